"""Parse what a user typed into a bounded, safe query plan (never an unbounded scan).

Syntax: words; "quoted phrases" (matched through syllable pairs); ``-word`` or ``-"phrase"``
to exclude; ``số:70/2018`` or ``so:...`` for a number; ``năm:2018`` for a year. Anything else,
including unknown ``field:`` prefixes, unbalanced quotes and wildcards, is read as plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from search_index import analysis
from search_index.errors import SearchQueryError

#: Longest query accepted, in characters.
MAX_QUERY_CHARS = 1000
#: Words of a query that are used; the rest is ignored (keeps long questions bounded).
MAX_WORDS = 64
#: Queries with at most this many words require every word; longer ones rank by any word.
ALL_WORDS_UP_TO = 4

_FIELD_RE = re.compile(r'(?<![^\W_])([^\W\d_]+):("[^"]*"|[^\s"]+)')
_PHRASE_RE = re.compile(r'(?<![^\s(])(-?)"([^"]*)"')
_NEGATED_RE = re.compile(r"(?<![^\s(])-([^\W_][^\s]*)")

# Digits a bare number needs before it is also looked up as a number / legacy id prefix.
_BARE_NUMBER_DIGITS = 3
_NUMBER_FIELDS = {"so", "số", "sokyhieu", "number", "ma", "mã", "id"}
_YEAR_FIELDS = {"nam", "năm", "year"}


@dataclass(frozen=True)
class Term:
    """A unigram or pair as typed: its exact form (when typed with marks) and folded form."""

    exact: str | None
    folded: str

    @property
    def is_pair(self) -> bool:
        """Tell whether this term is a syllable pair."""
        return analysis.is_pair(self.folded)


@dataclass
class ParsedQuery:
    """A query plan: what to rank by, what must match, what must not, and filters."""

    words: list[Term] = field(default_factory=list)
    pairs: list[Term] = field(default_factory=list)
    #: Groups that must all match: each phrase is its pairs (or its single word).
    required: list[list[Term]] = field(default_factory=list)
    excluded: list[list[Term]] = field(default_factory=list)
    notations: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)
    require_all_words: bool = False

    @property
    def match_all(self) -> bool:
        """Tell whether nothing restricts the text (browse everything visible)."""
        return not (self.words or self.pairs or self.required or self.notations)


def _terms(tokens: list[str], marked: bool) -> tuple[list[Term], list[Term]]:
    folded = analysis.fold_tokens(tokens)
    words = [Term(t if marked else None, f) for t, f in zip(tokens, folded, strict=True)]
    pair_terms = [
        Term(p if marked else None, fp)
        for p, fp in zip(analysis.pairs(tokens), analysis.pairs(folded), strict=True)
    ]
    return words, pair_terms


def _unique(terms: list[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def parse(text: str) -> ParsedQuery:
    """Parse a user query; raise SearchQueryError with a Vietnamese message when it cannot run."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchQueryError(
            f"Câu tìm kiếm quá dài ({len(text)} ký tự); tối đa {MAX_QUERY_CHARS} ký tự."
        )
    query = ParsedQuery()
    raw = analysis.normalize(text).strip()
    if raw in ("", "*"):
        return query

    def take_field(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2).strip('"')
        if name in _NUMBER_FIELDS:
            key = analysis.notation_key(value)
            if key:
                query.notations.append(key)
            return " "
        if name in _YEAR_FIELDS and value.isdigit():
            query.filters.setdefault("year", []).append(value)
            return " "
        return f" {value} "  # unknown field: search its value as words

    rest = _FIELD_RE.sub(take_field, raw)
    phrases: list[tuple[bool, list[str]]] = []

    def take_phrase(match: re.Match[str]) -> str:
        phrases.append((match.group(1) == "-", analysis.tokenize(match.group(2))))
        return " "

    rest = _PHRASE_RE.sub(take_phrase, rest)
    negated: list[list[str]] = []

    def take_negated(match: re.Match[str]) -> str:
        negated.append(analysis.tokenize(match.group(1)))
        return " "

    rest = _NEGATED_RE.sub(take_negated, rest)
    rest = rest.replace('"', " ").replace("*", " ")
    query.notations += [analysis.notation_key(n) for n in analysis.find_notations(rest)]
    tokens = analysis.tokenize(rest)
    # In a short query a bare number may start a number or legacy id ("488397-VBĐT").
    if len(tokens) <= ALL_WORDS_UP_TO:
        query.notations += [t for t in tokens if t.isdigit() and len(t) >= _BARE_NUMBER_DIGITS]
    positive = [tokens] + [toks for neg, toks in phrases if not neg]
    marked = any(analysis.has_marks(t) for toks in positive for t in toks)

    words, pair_terms = _terms(tokens[:MAX_WORDS], marked)
    for neg, toks in phrases:
        p_words, p_pairs = _terms(toks[:MAX_WORDS], marked)
        if not p_words:
            continue
        group = p_pairs or p_words
        if neg:
            query.excluded.append(group)
        else:
            query.required.append(group)
            words += p_words
            pair_terms += p_pairs
    for toks in negated:
        n_words, n_pairs = _terms(toks[:MAX_WORDS], marked)
        if n_words:
            query.excluded.append(n_pairs or n_words)
    query.words = _unique(words)[:MAX_WORDS]
    query.pairs = _unique(pair_terms)[:MAX_WORDS]
    query.notations = list(dict.fromkeys(k for k in query.notations if k))
    query.require_all_words = 1 < len(tokens) <= ALL_WORDS_UP_TO and not query.required
    if query.match_all and not query.filters and not query.excluded:
        raise SearchQueryError("Câu tìm kiếm không có từ nào để tìm; hãy nhập từ khóa.")
    return query
