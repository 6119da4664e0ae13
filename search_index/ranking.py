"""Relevance ranking: BM25 over fields combined per term (BM25F, as SQLite FTS5 scores columns).

For each query term (a syllable or a syllable pair, exact or folded) the weighted frequencies
of its fields are summed (title counts more than issuer/signer, which count more than body
and attachment text), then saturated once against the document's whole length. Terms found in
more than half of the documents get an idf of almost zero, so the little words of a long
question do not drown its rare ones.
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, islice
from operator import itemgetter

from whoosh.util.numeric import byte_to_length

from search_index import postings, schema
from search_index.postings import SegmentView, mask_bytes
from search_index.query import ParsedQuery

K1 = 1.2
B = 0.75
#: Weights of the text fields inside one term's frequency (title > issuer/signer > body).
FIELD_WEIGHTS = {schema.TITLE: 2.0, schema.META: 1.5, schema.TEXT: 1.0, schema.ATTACHMENT: 1.0}
#: Weight of syllable pairs relative to single syllables.
PAIR_WEIGHT = 1.0
#: Weight of diacritic-folded forms when the query was typed with diacritics.
FOLDED_WEIGHT = 0.2
#: Weight of an exact number / legacy id match.
IDENT_WEIGHT = 30.0
#: Smallest idf: terms found in more than half of the documents hardly count.
IDF_FLOOR = 1e-6
#: Postings scored in full per query before common terms only re-score the best candidates.
FULL_SCORING_POSTINGS = 30_000
#: Candidates re-scored with the common terms (at least; 4 x the requested hits otherwise).
MIN_CANDIDATES = 500
#: A first group in more documents than this, scored alone, takes its best documents from a
#: cached list ordered by the group's score instead of scoring every posting again.
IMPACT_MIN_POSTINGS = 5_000
#: Fields whose lengths make up a document's length.
LENGTH_FIELDS = tuple(name + schema.EXACT_SUFFIX for name in FIELD_WEIGHTS)


@dataclass(frozen=True)
class Group:
    """One scored query term: the same index term looked up in several weighted fields."""

    term: str
    fields: tuple[tuple[str, float], ...]
    weight: float
    #: Score by frequency only (no length normalization): exact identifier fields.
    flat: bool = False


def groups(parsed: ParsedQuery) -> list[Group]:
    """Return the scored terms of a parsed query."""
    exact_fields = tuple((n + schema.EXACT_SUFFIX, w) for n, w in FIELD_WEIGHTS.items())
    folded_fields = tuple((n + schema.FOLDED_SUFFIX, w) for n, w in FIELD_WEIGHTS.items())
    result: list[Group] = []
    for terms, weight in ((parsed.words, 1.0), (parsed.pairs, PAIR_WEIGHT)):
        for term in terms:
            if term.exact is None:
                result.append(Group(term.folded, folded_fields, weight))
                continue
            result.append(Group(term.exact, exact_fields, weight))
            if FOLDED_WEIGHT:
                result.append(Group(term.folded, folded_fields, weight * FOLDED_WEIGHT))
    for key in parsed.notations:
        result.append(Group(key, ((schema.IDENT, 1.0),), IDENT_WEIGHT, flat=True))
    return result


def idf(total_docs: int, df: int) -> float:
    """Return BM25 idf the way SQLite FTS5 computes it (floored)."""
    df = min(df, total_docs)  # counts may include deleted documents not yet merged away
    return max(IDF_FLOOR, math.log((total_docs - df + 0.5) / (df + 0.5)))


def doc_frequency(views: Sequence[SegmentView], group: Group) -> int:
    """Estimate the documents holding the term in any of the group's fields.

    The largest field count per segment (from the term dictionary, no postings read): a term
    of a title is nearly always in the body too, so this is close to the union and cheap.
    Deleted documents still count until their segment is merged, as in Whoosh.
    """
    df = 0
    for view in views:
        best = 0
        for field, _ in group.fields:
            stats = view.term_stats(field, group.term)
            if stats is not None and stats[0] > best:
                best = stats[0]
        df += best
    return df


def doc_lengths(view: SegmentView) -> array:
    """Return each document's length (terms in all its text fields) in a segment."""
    lengths = view.numeric_column("doc_len", "I")
    if any(lengths) or not view.n:
        return lengths
    # Segments written without the column: add up Whoosh's (approximate) field lengths.
    table = [byte_to_length(b) for b in range(256)]
    total = array("I", bytes(4 * view.n))
    for field in LENGTH_FIELDS:
        field_lengths = map(table.__getitem__, view.length_bytes(field))
        total = array("I", map(int.__add__, total, field_lengths))
    return total


def total_length(view: SegmentView) -> int:
    """Return the summed length of a segment's live documents."""
    lengths = doc_lengths(view)
    if view.live_count == view.n:
        return sum(lengths)
    return sum(compress(lengths, view.live.to_bytes(view.n, "little")))


def length_norms(view: SegmentView, average: float) -> array:
    """Return K1 * (1 - B + B * length / average) for each document of a segment."""
    average = max(1.0, average)
    cache_key = (view.segid, "N", round(average, 3), K1, B)
    hit = postings.CACHE.get(cache_key)
    if hit is not None:
        return hit
    base, slope = K1 * (1 - B), K1 * B / average
    norms = array("d", (base + slope * length for length in doc_lengths(view)))
    postings.CACHE.put(cache_key, norms, 8 * view.n + 100)
    return norms


def _add_group(
    view: SegmentView,
    allowed: bytes,
    group: Group,
    factor: float,
    norms: array,
    scores: dict[int, float],
) -> None:
    """Add one group's score to every allowed document holding its term (full scoring)."""
    lists = []
    for field, field_weight in group.fields:
        found = view.postings(field, group.term)
        if found is None:
            continue
        docs, tfs = found
        keep = bytes(map(allowed.__getitem__, docs))
        if 1 in keep:
            lists.append((len(docs), compress(docs, keep), compress(tfs, keep), field_weight))
    if not lists:
        return
    # Weighted frequency per document: the longest list builds the dict in C, others add.
    lists.sort(key=lambda item: -item[0])
    _, docs_it, tfs_it, weight = lists[0]
    tf_iter = tfs_it if weight == 1.0 else map(weight.__mul__, tfs_it)
    freqs: dict[int, float] = dict(zip(docs_it, tf_iter, strict=False))
    fget = freqs.get
    for _, docs_it, tfs_it, weight in lists[1:]:
        for doc, tf in zip(docs_it, tfs_it, strict=False):
            freqs[doc] = fget(doc, 0) + weight * tf
    sget = scores.get
    if group.flat:
        for doc, f in freqs.items():
            scores[doc] = sget(doc, 0.0) + factor * f / (f + K1)
    else:
        for doc, f in freqs.items():
            scores[doc] = sget(doc, 0.0) + factor * f / (f + norms[doc])


def _impact_order(view: SegmentView, group: Group, norms: array) -> tuple[array, array]:
    """Return a group's documents by descending score and the per-document scores (cached).

    Scores are the group's saturated frequency (no idf, no weight), zero where the term is
    absent; ties keep ascending document numbers. Deleted documents are left in: callers walk
    the order through a mask of allowed documents.
    """
    cache_key = (view.segid, "impact", group.term, group.fields, group.flat, id(norms))
    hit = postings.CACHE.get(cache_key)
    if hit is not None and hit[2] is norms:
        return hit[0], hit[1]
    everything = b"\x01" * view.n
    freqs: dict[int, float] = {}
    _add_group(view, everything, group, 1.0, norms, freqs)
    values = array("d", bytes(8 * view.n))
    deque(map(values.__setitem__, freqs, freqs.values()), maxlen=0)
    order = array("I", sorted(freqs, key=values.__getitem__, reverse=True))
    postings.CACHE.put(cache_key, (order, values, norms), 4 * len(order) + 8 * view.n + 200)
    return order, values


def _add_best_of_group(
    view: SegmentView,
    allowed: bytes,
    group: Group,
    factor: float,
    norms: array,
    scores: dict[int, float],
    count: int,
) -> None:
    """Add a group's score to the scored documents and to its ``count`` best other ones.

    Documents not scored yet hold this group's score only, so its best ``count`` of them are
    the only ones that can reach the best ``count`` overall: the same candidates as
    _add_group gives, without touching every posting of a common term again.
    """
    order, values = _impact_order(view, group, norms)
    best = list(islice(compress(order, map(allowed.__getitem__, order)), count + len(scores)))
    if scores:
        for doc in scores:
            scores[doc] += factor * values[doc]
        best = [doc for doc in best if doc not in scores]
    scores.update(zip(best, map(factor.__mul__, map(values.__getitem__, best)), strict=True))


def _add_group_to(
    view: SegmentView,
    docs_wanted: list[int],
    group: Group,
    factor: float,
    norms: array,
    scores: dict[int, float],
) -> None:
    """Add one group's score to the given documents only (sorted ``docs_wanted``)."""
    freqs = dict.fromkeys(docs_wanted, 0.0)
    wanted_bytes: bytes | None = None
    for field, field_weight in group.fields:
        found = view.postings(field, group.term)
        if found is None:
            continue
        docs, tfs = found
        size = len(docs)
        if size > 16 * len(docs_wanted):
            # Long list: binary search for each wanted document.
            for doc in docs_wanted:
                i = bisect_left(docs, doc)
                if i < size and docs[i] == doc:
                    freqs[doc] += field_weight * tfs[i]
            continue
        if wanted_bytes is None:
            marks = bytearray(view.n)
            for doc in docs_wanted:
                marks[doc] = 1
            wanted_bytes = bytes(marks)
        keep = bytes(map(wanted_bytes.__getitem__, docs))
        for doc, tf in zip(compress(docs, keep), compress(tfs, keep), strict=False):
            freqs[doc] += field_weight * tf
    for doc, f in freqs.items():
        if f:
            norm = K1 if group.flat else norms[doc]
            scores[doc] = scores.get(doc, 0.0) + factor * f / (f + norm)


def _best_only(order: Sequence[tuple[Group, float, int]], position: int, spent: int) -> bool:
    """Tell whether a common group is the last one rank() scores over all its postings.

    The loop in rank() stops after it when the next group would exceed the posting budget
    (once enough candidates exist; with fewer, every one of them is kept anyway), so only
    its best documents can become candidates.
    """
    df = order[position][2]
    if df < IMPACT_MIN_POSTINGS:
        return False
    following = position + 1
    return following == len(order) or spent + df + order[following][2] > FULL_SCORING_POSTINGS


def rank(
    views: Sequence[SegmentView],
    finals: Sequence[int],
    scored: Sequence[tuple[Group, float, int]],
    average_length: float,
    wanted: int,
) -> list[tuple[float, int, int]]:
    """Return the ``wanted`` best ``(score, segment number, docnum)`` of the final masks.

    ``scored`` holds each group with its idf and document frequency. Groups are scored over
    all their postings, rarest (highest bound) first, until FULL_SCORING_POSTINGS is spent and
    enough candidates exist; the remaining, common groups only add their score to the best
    candidates. Their idf is low, so the order of the top hits hardly ever changes.
    """
    order = sorted(scored, key=lambda item: -(item[0].weight * item[1]))
    candidates = max(MIN_CANDIDATES, 4 * wanted)
    live = [(i, v, f) for i, (v, f) in enumerate(zip(views, finals, strict=True)) if f]
    allowed = {i: mask_bytes(f, v.n) for i, v, f in live}
    norms = {i: length_norms(v, average_length) for i, v, _ in live}
    scores: dict[int, dict[int, float]] = {i: {} for i, _, _ in live}
    spent = 0
    position = 0
    while position < len(order):
        group, group_idf, df = order[position]
        scored_docs = sum(len(s) for s in scores.values())
        if position and spent + df > FULL_SCORING_POSTINGS and scored_docs >= candidates:
            break
        factor = group_idf * group.weight * (K1 + 1)
        if df >= candidates and _best_only(order, position, spent):
            for i, view, _ in live:
                _add_best_of_group(view, allowed[i], group, factor, norms[i], scores[i], candidates)
        else:
            for i, view, _ in live:
                _add_group(view, allowed[i], group, factor, norms[i], scores[i])
        spent += df
        position += 1
    # Terms in most documents (idf at the floor) cannot reorder candidates; skip them.
    rest = [item for item in order[position:] if item[1] > IDF_FLOOR]
    keep = candidates if rest else wanted
    best = heapq.nlargest(
        keep,
        (
            (score, i, doc)
            for i, seg in scores.items()
            for doc, score in heapq.nlargest(keep, seg.items(), key=itemgetter(1))
        ),
    )
    if rest:
        by_segment: dict[int, list[int]] = {}
        for _, i, doc in best:
            by_segment.setdefault(i, []).append(doc)
        for i, docs in by_segment.items():
            docs.sort()
            for group, group_idf, _ in rest:
                factor = group_idf * group.weight * (K1 + 1)
                _add_group_to(views[i], docs, group, factor, norms[i], scores[i])
        best = heapq.nlargest(wanted, ((scores[i][doc], i, doc) for _, i, doc in best))
    return best[:wanted]
