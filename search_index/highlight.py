"""Highlighted snippets: find the query's words in a text and mark them in short fragments."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Collection

from search_index import analysis

_WORD_RE = re.compile(r"[^\W_]+")
#: Characters of a text scanned for matches (bounds the work for huge attachments).
SCAN_CHARS = 200_000


def _matches(text: str, exact: Collection[str], folded: Collection[str]) -> list[tuple[int, int]]:
    spans = []
    for match in _WORD_RE.finditer(text):
        token = analysis.normalize(match.group())
        if token in exact or analysis.fold(token) in folded:
            spans.append(match.span())
    return spans


def _mark(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    out = []
    pos = start
    for s, e in spans:
        if s < start or e > end:
            continue
        out.append(html.escape(text[pos:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def highlight_title(title: str, exact: Collection[str], folded: Collection[str]) -> str:
    """Return the title as HTML with matched words marked."""
    title = unicodedata.normalize("NFC", title)
    return _mark(title, _matches(title, exact, folded), 0, len(title))


def fragments(
    text: str,
    exact: Collection[str],
    folded: Collection[str],
    *,
    size: int = 200,
    count: int = 2,
) -> list[str]:
    """Return up to ``count`` HTML fragments of about ``size`` characters around matches."""
    text = unicodedata.normalize("NFC", text[:SCAN_CHARS])
    spans = _matches(text, exact, folded)
    if not spans:
        return []
    # Score each window starting at a match by the number of distinct words it covers.
    windows = []
    for i, (start, _) in enumerate(spans):
        words = set()
        j = i
        while j < len(spans) and spans[j][1] - start <= size:
            words.add(analysis.fold(analysis.normalize(text[spans[j][0] : spans[j][1]])))
            j += 1
        windows.append((len(words), j - i, -start, i, j))
    windows.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for _, _, _, i, _end in windows:
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
