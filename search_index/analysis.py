"""Vietnamese text analysis: NFC, lowercase, syllable tokens, folded forms, syllable pairs.

Everything here works on whole strings with C-level string operations (``str.translate``,
``re.findall``); queries and highlighting use it directly, and ``search_index.terms`` counts
the same terms of documents as arrays of ids for the bulk indexer. The Whoosh analyzers at
the bottom wrap the same functions so that Whoosh's own code paths agree with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from itertools import pairwise

from whoosh.analysis import Analyzer, Token

#: Joins the two syllables of a pair term; never produced by the tokenizer itself.
PAIR_JOINER = "_"

#: A syllable/word token: letters and digits, no underscore (it joins pairs).
TOKEN_RE = re.compile(r"[^\W_]+")

# Tone mark placement differs between the "old" (hóa, thủy) and "new" (hoá, thuỷ) styles, and
# both occur in the same documents. Canonical form here: the mark on the second vowel.
_TONE_MOVES = {
    **{o + "a": "o" + a for o, a in zip("òóỏõọ", "àáảãạ", strict=True)},
    **{o + "e": "o" + e for o, e in zip("òóỏõọ", "èéẻẽẹ", strict=True)},
    **{u + "y": "u" + y for u, y in zip("ùúủũụ", "ỳýỷỹỵ", strict=True)},
}
_TONE_RE = re.compile(r"(?<!q)(" + "|".join(_TONE_MOVES) + r")(?![^\W_])")


def _build_fold_table() -> dict[int, str]:
    """Map every precomposed Latin letter with marks to its base letter, and đ to d."""
    table: dict[int, str] = {}
    ranges = (range(0x00C0, 0x0250), range(0x1E00, 0x1F00))
    for cp in (c for r in ranges for c in r):
        char = chr(cp)
        base = "".join(
            ch for ch in unicodedata.normalize("NFD", char) if not unicodedata.combining(ch)
        )
        if base != char and len(base) == 1:
            table[cp] = base
    table.update({ord("đ"): "d", ord("Đ"): "D", ord("ð"): "d", ord("Ð"): "D"})
    # Stray combining marks that NFC could not compose are dropped.
    for cp in range(0x0300, 0x0370):
        table[cp] = ""
    return table


_FOLD_TABLE = _build_fold_table()


def normalize(text: str) -> str:
    """Return ``text`` in NFC, lowercased, with tone marks placed canonically."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    return _TONE_RE.sub(lambda m: _TONE_MOVES[m.group()], text)


def fold(text: str) -> str:
    """Remove Vietnamese diacritics (``đ`` -> ``d``) from already normalized text."""
    return text.translate(_FOLD_TABLE)


def fold_sources() -> dict[str, str]:
    """Return, for each base letter, every other character that folds to it (both cases)."""
    sources: dict[str, str] = {}
    for cp, base in _FOLD_TABLE.items():
        if len(base) == 1:
            for key in {base, base.lower()}:
                sources[key] = sources.get(key, "") + chr(cp)
    return sources


def has_marks(token: str) -> bool:
    """Tell whether a normalized token carries diacritics (so it differs from its folded form)."""
    return fold(token) != token


def tokenize(text: str) -> list[str]:
    """Split text into normalized syllable tokens (no stop words, no minimum length)."""
    return TOKEN_RE.findall(normalize(text))


class _Memo(dict[str, str]):
    """Token -> transformed token, computed once per distinct token (a C-level lookup after)."""

    def __init__(self, transform: object) -> None:
        super().__init__()
        self.transform = transform

    def __missing__(self, token: str) -> str:
        if len(self) > 1_000_000:  # bound memory on pathological input
            self.clear()
        value = self[token] = self.transform(token)  # type: ignore[operator]
        return value


def canonical_tone(token: str) -> str:
    """Return a normalized token with its tone mark placed canonically."""
    return _TONE_RE.sub(lambda m: _TONE_MOVES[m.group()], token)


_FOLD_MEMO = _Memo(fold)


def fold_tokens(tokens: list[str]) -> list[str]:
    """Fold a list of normalized tokens (keeps alignment)."""
    return list(map(_FOLD_MEMO.__getitem__, tokens))


def pairs(tokens: list[str]) -> list[str]:
    """Return the syllable pairs (bigrams) of a token list as joined terms."""
    return list(map(PAIR_JOINER.join, pairwise(tokens)))


def is_pair(term: str) -> bool:
    """Tell whether an index term is a syllable pair."""
    return PAIR_JOINER in term


# Numbers and notations ("70/2018/NĐ-CP", "488397-VBĐT")

_NOTATION_RE = re.compile(r"[^\W_]+")
# A query token that looks like a document number or legacy id: digits plus a separator.
_NUMBER_LIKE_RE = re.compile(r"(?<![^\W_])[^\W_]*\d[^\W_]*(?:[/\-.][^\W_&]+(?:&[^\W_]+)*)+")


def notation_parts(value: str) -> list[str]:
    """Split a number/notation into folded lowercase parts: 70/2018/NĐ-CP -> 70,2018,nd,cp."""
    return _NOTATION_RE.findall(fold(normalize(value)))


def notation_key(value: str) -> str:
    """Return the canonical exact key of a number/notation (``70.2018.nd.cp``)."""
    return ".".join(notation_parts(value))


def notation_terms(value: str) -> list[str]:
    """Return the index terms for a number: the full key and every left-anchored prefix."""
    parts = notation_parts(value)
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def find_notations(query: str) -> list[str]:
    """Find number-like fragments of a query (``70/2018/ND-CP``, ``70/2018``, ``488397-VBĐT``)."""
    return [m.group() for m in _NUMBER_LIKE_RE.finditer(normalize(query))]


# Whoosh analyzers (used by Whoosh's standard writer path and by anything that re-analyzes)


class SyllableAnalyzer(Analyzer):
    """Whoosh analyzer yielding exact (or folded) unigram and pair terms of Vietnamese text."""

    def __init__(self, folded: bool = False) -> None:
        self.folded = folded

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SyllableAnalyzer) and other.folded == self.folded

    def __hash__(self) -> int:
        return hash((SyllableAnalyzer, self.folded))

    def __call__(self, value: str, **kwargs: object) -> Iterator[Token]:
        """Yield one token per unigram and pair (positions are not recorded)."""
        tokens = tokenize(value)
        if self.folded:
            tokens = fold_tokens(tokens)
        token = Token(**kwargs)
        for pos, text in enumerate([*tokens, *pairs(tokens)]):
            token.text = text
            token.pos = pos
            token.boost = 1.0
            token.stopped = False
            yield token


class NotationAnalyzer(Analyzer):
    """Whoosh analyzer yielding the exact key and left prefixes of numbers and legacy ids."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotationAnalyzer)

    def __hash__(self) -> int:
        return hash(NotationAnalyzer)

    def __call__(self, value: str, **kwargs: object) -> Iterator[Token]:
        """Yield the notation terms of each whitespace-separated value."""
        token = Token(**kwargs)
        pos = 0
        for part in value.split():
            for text in notation_terms(part):
                token.text = text
                token.pos = pos
                token.boost = 1.0
                token.stopped = False
                pos += 1
                yield token
