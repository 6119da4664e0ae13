"""Run a parsed query against the index: permissions, filters, counts, facets, ranking, hits.

Sets of documents (matches, permissions, filters, facet values) are masks (see postings.py),
so totals and facet counts are exact and cost a few C-level operations per segment. Only the
ranking touches individual postings, and only those of documents that passed every filter.
Permissions are applied to the mask before anything is counted or ranked, so a document a
user may not open never contributes to a hit, a count, a facet or a snippet.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC
from whoosh.reading import SegmentReader

from search_index import highlight, postings, ranking, schema
from search_index import query as query_mod
from search_index.document import decompress_snippet
from search_index.errors import SearchQueryError
from search_index.postings import SegmentView
from search_index.query import ParsedQuery, Term
from search_index.writer import INDEX_NAME, open_index

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_FACET_VALUES = 50
# Facets with at most this many values are counted value by value (a fast byte scan each).
FEW_VALUES = 12

# The "migrated" facet holds "yes"/"no"; query strings may say it other ways.
_YES_NO = {
    "1": "yes",
    "true": "yes",
    "yes": "yes",
    "on": "yes",
    "có": "yes",
    "0": "no",
    "false": "no",
    "no": "no",
    "off": "no",
    "không": "no",
}

Sort = Literal["relevance", "date"]
TextLoader = Callable[[str], str | None]


class _State:
    """Open segment views of one index directory, refreshed when its generation changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fingerprint: tuple[int, int, int] = (-2, 0, 0)
        self.views: list[SegmentView] = []
        self.total_docs = 0
        self.total_length = 0
        self.lock = threading.Lock()

    def _fingerprint(self, storage: FileStorage) -> tuple[int, int, int]:
        # The generation alone repeats after the index is recreated; the TOC file does not.
        generation = TOC._latest_generation(storage, INDEX_NAME)
        try:
            stat = os.stat(os.path.join(self.path, f"_{INDEX_NAME}_{generation}.toc"))
        except OSError:
            return generation, 0, 0
        return generation, stat.st_ino, stat.st_mtime_ns

    def refresh(self) -> None:
        storage = FileStorage(self.path)
        fingerprint = self._fingerprint(storage)
        if fingerprint == self.fingerprint:
            return
        with self.lock:
            if fingerprint == self.fingerprint:
                return
            generation = fingerprint[0]
            ix = open_index(self.path)
            toc = TOC.read(storage, INDEX_NAME, gen=generation)
            views = [
                SegmentView(SegmentReader(storage, ix.schema, seg, generation=generation))
                for seg in toc.segments
            ]
            old = {v.segid for v in self.views} - {v.segid for v in views}
            for segid in old:
                postings.CACHE.drop_prefix(segid)
            self.views = views
            self.total_docs = sum(v.live_count for v in views)
            self.total_length = sum(ranking.total_length(v) for v in views)
            self.fingerprint = fingerprint


_states: dict[str, _State] = {}
_states_lock = threading.Lock()


def _state(path: str | Path) -> _State:
    key = str(Path(path).resolve())
    with _states_lock:
        state = _states.get(key)
        if state is None:
            state = _states[key] = _State(key)
    state.refresh()
    return state


def _term_mask(view: SegmentView, term: Term) -> int:
    """Documents holding a word or pair in any text field (folded forms include exact ones)."""
    mask = 0
    for base in ranking.FIELD_WEIGHTS:
        mask |= view.mask(base + schema.FOLDED_SUFFIX, term.folded)
    return mask


def _group_mask(view: SegmentView, group: Sequence[Term]) -> int:
    mask = view.live
    for term in group:
        mask &= _term_mask(view, term)
        if not mask:
            break
    return mask


def _match_mask(view: SegmentView, parsed: ParsedQuery, all_words: bool) -> int:
    if parsed.match_all:
        mask = view.live
    elif all_words:
        mask = _group_mask(view, parsed.words)
    else:
        mask = 0
        for term in parsed.words:
            mask |= _term_mask(view, term)
        for term in parsed.pairs:
            mask |= _term_mask(view, term)
    for key in parsed.notations:
        mask |= view.mask(schema.IDENT, key)
    for group in parsed.required:
        mask &= _group_mask(view, group)
    for group in parsed.excluded:
        mask &= ~_group_mask(view, group)
    return mask


def _visible_mask(view: SegmentView, principals: tuple[str, ...], clearance: int) -> int:
    key = (view.segid, "visible", principals, clearance, view.live_count)
    hit = postings.CACHE.get(key)
    if hit is not None:
        return hit
    who = 0
    for principal in principals:
        who |= view.mask(schema.PRINCIPAL, principal)
    secrecy = 0
    for level in range(max(0, clearance) + 1):
        secrecy |= view.mask(schema.SECRECY, str(level))
    mask = view.live & who & secrecy
    postings.CACHE.put(key, mask, view.n + 100)
    return mask


def _filter_mask(view: SegmentView, filters: Mapping[str, list[str]]) -> int:
    mask = view.live
    for name, values in filters.items():
        any_value = 0
        for value in values:
            any_value |= view.mask(name, value)
        mask &= any_value
    return mask


def _clean_filters(filters: Mapping[str, Any] | None) -> dict[str, list[str]]:
    cleaned: dict[str, list[str]] = {}
    for name, value in (filters or {}).items():
        if name not in schema.FACET_FIELDS:
            raise SearchQueryError(f"Không lọc được theo trường «{name}».")
        if value is None or value == "" or value == []:
            continue
        values = [value] if isinstance(value, str | int | bool) else list(value)
        strings = []
        for item in values:
            if isinstance(item, bool):
                strings.append("yes" if item else "no")
            elif name == "migrated" and str(item).lower() in _YES_NO:
                strings.append(_YES_NO[str(item).lower()])
            else:
                strings.append(str(item))
        cleaned[name] = strings
    return cleaned


def search(
    path: str | Path,
    query: str,
    *,
    principals: Iterable[str],
    clearance: int = 0,
    filters: Mapping[str, Any] | None = None,
    facets: Iterable[str] = (),
    sort: Sort = "relevance",
    limit: int = 10,
    offset: int = 0,
    load_text: TextLoader | None = None,
) -> dict[str, Any]:
    """Search the index as a user with these principals and secrecy clearance.

    Returns ``{"total", "hits": [{"id", "legacy_id", "number", "title", "score",
    "highlights", ...}], "facets": {field: [{"value", "count"}]}, "relaxed"}``. Principals
    look like ``"unit:<id>"``, ``"user:<id>"``, ``"role:<code>"``; ``"all"`` is implied.
    ``load_text(id)`` may supply a record's full text for snippets (else a stored prefix).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchQueryError(f"Số kết quả mỗi trang phải từ 1 đến {MAX_LIMIT}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchQueryError(f"Chỉ xem được tối đa {MAX_OFFSET} kết quả đầu tiên.")
    if sort not in ("relevance", "date"):
        raise SearchQueryError("Cách sắp xếp không hợp lệ.")
    facet_names = list(dict.fromkeys(facets))
    for name in facet_names:
        if name not in schema.FACET_FIELDS:
            raise SearchQueryError(f"Không thống kê được theo trường «{name}».")
    parsed = query_mod.parse(query)
    wanted_filters = _clean_filters(filters)
    for name, values in parsed.filters.items():
        wanted_filters.setdefault(name, []).extend(values)
    who = tuple(sorted({*principals, "all"}))
    state = _state(path)
    views = state.views

    finals = _final_masks(views, parsed, who, clearance, wanted_filters, parsed.require_all_words)
    relaxed = False
    if parsed.require_all_words and not any(finals):
        finals = _final_masks(views, parsed, who, clearance, wanted_filters, False)
        relaxed = True
    total = sum(m.bit_count() for m in finals)

    facet_counts = _facets(views, finals, facet_names)
    wanted = offset + limit
    if sort == "date" or parsed.match_all:
        ranked = _by_date(views, finals, wanted)
    else:
        ranked = _by_relevance(state, views, finals, parsed, wanted)
    weights = _word_weights(state, views, parsed) if parsed.words else None
    hits = _hits(views, ranked[offset:wanted], parsed, load_text, weights)
    return {"total": total, "hits": hits, "facets": facet_counts, "relaxed": relaxed}


def _final_masks(
    views: list[SegmentView],
    parsed: ParsedQuery,
    who: tuple[str, ...],
    clearance: int,
    filters: Mapping[str, list[str]],
    all_words: bool,
) -> list[int]:
    finals = []
    for view in views:
        allowed = _visible_mask(view, who, clearance)
        if allowed and filters:
            allowed &= _filter_mask(view, filters)
        finals.append(_match_mask(view, parsed, all_words) & allowed if allowed else 0)
    return finals


def _facets(
    views: list[SegmentView], finals: list[int], names: list[str]
) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        counts: dict[str, int] = {}
        for view, final in zip(views, finals, strict=True):
            if not final:
                continue
            column = view.value_column(name)
            if column is not None:
                # One value per document: keep the value bytes of the final documents, count.
                lanes, values = column
                selected = ((final * 255) & lanes).to_bytes(view.n, "little")
                if len(values) <= FEW_VALUES:
                    found = {n: selected.count(n) for n in range(1, len(values) + 1)}
                else:  # drop the zero bytes (C), count what is left
                    found = Counter(selected.translate(None, b"\x00"))
                for number, count in found.items():
                    if count:
                        value = values[number - 1]
                        counts[value] = counts.get(value, 0) + count
                continue
            for value in view.values(name):
                count = (final & view.mask(name, value)).bit_count()
                if count:
                    counts[value] = counts.get(value, 0) + count
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        result[name] = [{"value": v, "count": c} for v, c in ordered[:MAX_FACET_VALUES]]
    return result


def _by_date(views: list[SegmentView], finals: list[int], wanted: int) -> list[tuple]:
    best: list[tuple] = []
    for segnum, (view, final) in enumerate(zip(views, finals, strict=True)):
        if not final:
            continue
        dates = view.date_keys()
        docs = postings.members(final, view.n)
        top = heapq.nlargest(wanted, docs, key=dates.__getitem__)
        best.extend((dates[d], 0.0, segnum, d) for d in top)
    best.sort(key=lambda item: (-item[0], item[2], -item[3]))
    return [(score, segnum, doc) for _, score, segnum, doc in best[:wanted]]


def _by_relevance(
    state: _State,
    views: list[SegmentView],
    finals: list[int],
    parsed: ParsedQuery,
    wanted: int,
) -> list[tuple]:
    total_docs = max(1, state.total_docs)
    scored = []
    for group in ranking.groups(parsed):
        df = ranking.doc_frequency(views, group)
        if df:
            scored.append((group, ranking.idf(total_docs, df), df))
    average = state.total_length / total_docs
    ranked = ranking.rank(views, finals, scored, average, wanted)
    # Ties (same score) show the most recent document first.
    dates = [view.date_keys() for view in views]
    ranked.sort(key=lambda item: (-item[0], -dates[item[1]][item[2]], item[1], item[2]))
    return ranked


def _word_weights(state: _State, views: list[SegmentView], parsed: ParsedQuery) -> dict[str, float]:
    """Return the idf of each query word (folded), to pick and mark snippet words."""
    total_docs = max(1, state.total_docs)
    weights = {}
    for term in parsed.words:
        df = sum((_term_mask(view, term) & view.live).bit_count() for view in views)
        weights[term.folded] = ranking.idf(total_docs, df) if df else 0.0
    return weights


def _hits(
    views: list[SegmentView],
    ranked: list[tuple],
    parsed: ParsedQuery,
    load_text: TextLoader | None,
    weights: dict[str, float] | None,
) -> list[dict[str, Any]]:
    # In long questions, words found in most documents (near-zero idf) are neither marked nor
    # used to pick fragments; short queries mark every word.
    long_query = len(parsed.words) > query_mod.ALL_WORDS_UP_TO
    if long_query and weights and max(weights.values()) > ranking.IDF_FLOOR:
        weights = {w: v for w, v in weights.items() if v > ranking.IDF_FLOOR}
        folded = set(weights)
    else:
        folded = {t.folded for t in parsed.words}
        weights = None
    exact = {t.exact for t in parsed.words if t.exact and t.folded in folded}
    hits = []
    for score, segnum, doc in ranked:
        stored = views[segnum].stored(doc)
        doc_id = stored["id"]
        text = load_text(doc_id) if load_text else None
        if text is None:
            text = decompress_snippet(stored.get(schema.SNIPPET))
        title = stored.get("title") or ""
        hits.append(
            {
                "id": doc_id,
                "legacy_id": stored.get("legacy_id"),
                "number": stored.get("number"),
                "title": title,
                "score": round(float(score), 4),
                "highlights": (
                    highlight.fragments(text, exact, folded, weights=weights) if folded else []
                ),
                "title_html": highlight.highlight_title(title, exact, folded),
                "kind": stored.get("kind"),
                "issued_on": stored.get("issued_on"),
            }
        )
    return hits


def warm(path: str | Path) -> None:
    """Load per-segment data every search needs (lengths, dates, facets, public documents).

    Call it once when a process starts (or after a rebuild) so the first user does not pay
    for it; searches work without it.
    """
    state = _state(path)
    average = state.total_length / max(1, state.total_docs)
    for view in state.views:
        ranking.length_norms(view, average)
        view.date_keys()
        _visible_mask(view, ("all",), 0)
        for name in schema.FACET_FIELDS:
            view.value_column(name)
