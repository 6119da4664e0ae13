"""Highlighted snippets: find the query's words in a text and mark them in short fragments."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping
from functools import lru_cache

from search_index import analysis

_WORD_RE = re.compile(r"[^\W_]+")
#: Characters of a text scanned for matches (bounds the work for huge attachments).
SCAN_CHARS = 100_000


_FOLD_SOURCES = analysis.fold_sources()


def _letter(char: str) -> str:
    sources = _FOLD_SOURCES.get(char)
    return f"[{re.escape(char)}{re.escape(sources)}]" if sources else re.escape(char)


@lru_cache(maxsize=256)
def _pattern(words: frozenset[str]) -> re.Pattern[str]:
    """Return a regex matching any of these folded words in unfolded text, in any case."""
    ordered = sorted(words, key=len, reverse=True)
    alternatives = ("".join(map(_letter, word)) for word in ordered)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(alternatives) + r")(?![^\W_])", re.IGNORECASE)


def _matches(
    text: str, exact: Collection[str], folded: Collection[str]
) -> list[tuple[int, int, str]]:
    """Return ``(start, end, folded word)`` of every word of ``text`` the query matches.

    Every matched word folds to a query word (exact forms fold too). Each letter of the
    pattern is a class of every character folding to it, so one C-level regex scan of the
    text itself finds the words, with no folded copy of the text.
    """
    words = frozenset({*folded, *(analysis.fold(w) for w in exact)})
    if not words:
        return []
    keys: dict[str, str] = {}
    spans = []
    for m in _pattern(words).finditer(text):
        word = m.group()
        key = keys.get(word)
        if key is None:
            key = keys[word] = analysis.fold(analysis.normalize(word))
        spans.append((m.start(), m.end(), key))
    return spans


def _mark(text: str, spans: list[tuple[int, int, str]], start: int, end: int) -> str:
    out = []
    pos = start
    for s, e, _ in spans:
        if s < start or e > end:
            continue
        out.append(html.escape(text[pos:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def _opening(text: str, size: int) -> str:
    """Return the start of a text (no match to show) as escaped HTML."""
    end = min(len(text), size)
    while end < len(text) and not text[end].isspace():
        end += 1
    return " ".join(html.escape(text[:end]).split()) + (" …" if end < len(text) else "")


def highlight_title(title: str, exact: Collection[str], folded: Collection[str]) -> str:
    """Return the title as HTML with matched words marked."""
    title = unicodedata.normalize("NFC", title)
    return _mark(title, _matches(title, exact, folded), 0, len(title))


def fragments(
    text: str,
    exact: Collection[str],
    folded: Collection[str],
    *,
    weights: Mapping[str, float] | None = None,
    size: int = 200,
    count: int = 2,
) -> list[str]:
    """Return up to ``count`` HTML fragments of about ``size`` characters around matches.

    A window's worth is the summed ``weights`` (by folded word, default 1) of the distinct
    words it holds, so rare words of a long question choose the fragment, not "của" or "và".
    Words weighing nothing are not marked.
    """
    text = unicodedata.normalize("NFC", text[:SCAN_CHARS])
    spans = _matches(text, exact, folded)
    if weights is not None:
        spans = [span for span in spans if weights.get(span[2], 0.0) > 0.0]
    if not spans:
        return [_opening(text, size)] if text.strip() else []

    def weight(word: str) -> float:
        return weights.get(word, 0.0) if weights is not None else 1.0

    # Slide a window over the matches, tracking the distinct words inside it.
    best: list[tuple[float, int, int]] = []
    inside: Counter[str] = Counter()
    value = 0.0
    j = 0
    for i, (start, _, _) in enumerate(spans):
        while j < len(spans) and spans[j][1] - start <= size:
            word = spans[j][2]
            if not inside[word]:
                value += weight(word)
            inside[word] += 1
            j += 1
        best.append((value, -start, i))
        word = spans[i][2]
        inside[word] -= 1
        if not inside[word]:
            value -= weight(word)
    best.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for _, _, i in best:
        start = max(0, spans[i][0] - size // 4)
        end = min(len(text), start + size)
        if any(start < e and s < end for s, e in chosen):
            continue
        chosen.append((start, end))
        if len(chosen) == count:
            break
    chosen.sort()
    result = []
    for start, end in chosen:
        # Widen to word boundaries so fragments do not cut syllables.
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        body = _mark(text, spans, start, end).strip()
        prefix = "… " if start > 0 else ""
        suffix = " …" if end < len(text) else ""
        result.append(prefix + " ".join(body.split()) + suffix)
    return result
