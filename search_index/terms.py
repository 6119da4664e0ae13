"""Texts analysed into arrays of term keys, for one segment build.

Counting a text's terms as strings costs a string and a hash for every distinct syllable
pair of every document (~0.4 µs each, ~3,000 per legal text), and the segment builder then
looked every string up again to invert it. A ``TermTable`` instead numbers words once per
build: tokens are split as bytes and looked up in the table's dict of tokens, and words
and pairs are counted with numpy; a pair is a 64-bit key made of its two word ids,
turned into a string only when the builder writes its field. Keys mean nothing outside
their table.

The terms are those of ``analysis.tokenize`` (queries), ``analysis.fold_tokens`` and
``analysis.pairs``; the tests hold the two paths to the same result.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from search_index import analysis

# Characters outside ASCII that end a token (letters and digits of any script do not).
_NON_ASCII_SEPARATORS = re.compile(r"[^\w\x00-\x7f]")
# Bytes of ASCII characters that end a token become spaces; UTF-8 bytes of other characters
# are kept (the separators among them are replaced before encoding).
_ASCII_TABLE = bytes(
    b if b >= 0x80 or analysis.TOKEN_RE.fullmatch(chr(b)) else 0x20 for b in range(256)
)
_PAIR_SHIFT = 32
_PAIR_BASE = 1 << _PAIR_SHIFT  # keys at or above are pairs
_LOW = _PAIR_BASE - 1
_JOIN = analysis.PAIR_JOINER


def token_bytes(text: str) -> list[bytes]:
    """Return the UTF-8 bytes of ``analysis.TOKEN_RE`` tokens of lowercased NFC ``text``.

    Splitting bytes is several times faster than a Unicode regex over the text.
    """
    lowered = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    for char in set(_NON_ASCII_SEPARATORS.findall(lowered)):
        lowered = lowered.replace(char, " ")
    return lowered.encode("utf-8").translate(_ASCII_TABLE).split()


class TermCounts(Mapping[str, int]):
    """The terms of one text and how often each occurs, as term keys of a table.

    Read as a mapping (``{term: count}``) it builds the strings; the segment builder uses
    the arrays.
    """

    __slots__ = ("_dict", "codes", "counts", "table")

    def __init__(self, table: TermTable, codes: np.ndarray, counts: np.ndarray) -> None:
        self.table = table
        self.codes = codes  # term keys of the table
        self.counts = counts
        self._dict: dict[str, int] | None = None

    def _as_dict(self) -> dict[str, int]:
        if self._dict is None:
            terms = self.table.strings(self.codes)
            self._dict = dict(zip(terms, self.counts.tolist(), strict=True))
        return self._dict

    def __getitem__(self, term: str) -> int:
        return self._as_dict()[term]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self.codes)


class _Ids(dict[Any, int]):
    """A dict that numbers what it has not seen yet through ``make``."""

    def __init__(self, make: Any) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> int:
        value = self[key] = self.make(key)
        return value


class TermTable:
    """Term keys of one segment build, and the analysis of texts into them.

    A word (syllable, folded syllable, number key, tag value) has an id below 2**31 and is
    its own key; a pair of words ``a``, ``b`` has the key ``(a + 1) << 32 | b``, so pairs
    need no lookup until the builder writes them. Not shared between threads: each build
    makes its own table.
    """

    def __init__(self) -> None:
        self.words: list[str] = []  # id -> word
        self.ids = _Ids(self._new_word)  # word -> id
        self._tokens = _Ids(self._new_token)  # raw token bytes -> id of its canonical word
        self._folded = np.zeros(1024, np.int64)  # word id -> id of its folded word
        self._analyses: dict[str, tuple[TermCounts, TermCounts, int]] = {}

    def _new_word(self, word: str) -> int:
        self.words.append(word)
        return len(self.words) - 1

    def _new_token(self, raw: bytes) -> int:
        word = analysis.canonical_tone(raw.decode("utf-8"))
        word_id = self.ids[word]
        folded_id = self.ids[analysis.fold(word)]
        if max(word_id, folded_id) >= len(self._folded):
            grown = np.zeros(2 * max(word_id, folded_id) + 2, np.int64)
            grown[: len(self._folded)] = self._folded
            self._folded = grown
        self._folded[word_id] = folded_id
        self._folded[folded_id] = folded_id  # folding is idempotent
        return word_id

    def strings(self, keys: np.ndarray) -> list[str]:
        """Return the term of each key."""
        words = self.words
        is_pair = keys >= _PAIR_BASE
        if not is_pair.any():
            return list(map(words.__getitem__, keys.tolist()))
        terms = np.empty(len(keys), object)
        terms[~is_pair] = list(map(words.__getitem__, keys[~is_pair].tolist()))
        pair_keys = keys[is_pair]
        firsts = map(words.__getitem__, ((pair_keys >> _PAIR_SHIFT) - 1).tolist())
        seconds = map(words.__getitem__, (pair_keys & _LOW).tolist())
        terms[is_pair] = list(map(_JOIN.join, zip(firsts, seconds, strict=True)))
        return terms.tolist()

    def analyze(self, text: str) -> tuple[TermCounts, TermCounts, int]:
        """Return exact and folded term counts (syllables and pairs) and the token count.

        The same text gives the same (shared) result objects within a build, so the
        builder inverts copies of a text once.
        """
        hit = self._analyses.get(text)
        if hit is None:
            tokens = token_bytes(text)
            # One lookup a token (a first pass through a local dict of the distinct tokens
            # measured twice as slow).
            ids = np.fromiter(map(self._tokens.__getitem__, tokens), np.int64, len(tokens))
            hit = self._analyses[text] = (
                self._count(ids),
                self._count(self._folded[ids]),
                len(tokens),
            )
        return hit

    def _count(self, ids: np.ndarray) -> TermCounts:
        words, word_counts = value_counts(ids)
        pairs, pair_counts = value_counts(((ids[:-1] + 1) << _PAIR_SHIFT) | ids[1:])
        return TermCounts(
            self, np.concatenate((words, pairs)), np.concatenate((word_counts, pair_counts))
        )

    def counts(self, terms: Iterable[str]) -> TermCounts:
        """Return the counts of already analysed terms (numbers, ids)."""
        counted = Counter(terms)
        keys = np.fromiter(map(self.ids.__getitem__, counted), np.int64, len(counted))
        return TermCounts(self, keys, np.fromiter(counted.values(), np.int64, len(counted)))


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted distinct values and how often each occurs.

    (``np.unique`` is many times slower on large arrays with this numpy.)
    """
    if not len(values):
        return values, values
    ordered = np.sort(values)
    bounds = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    return ordered[bounds[:-1]], bounds[1:] - bounds[:-1]
