"""Text rules for legacy exports: encodings, separators, Unicode, HTML, control characters."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# C0/C1 controls except \t and \n (\r, \v, \f are turned into \n first), DEL, stray BOMs.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe]")
_LINE_BREAKS_RE = re.compile("\r\n?|[\x0b\x0c\u2028\u2029]")
_SPACES_RE = re.compile(r"\s+")
_TONE_MARKS = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_LINE_BREAK_CHARS = ("\r", "\x0b", "\x0c", "\u2028", "\u2029")
_TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<!--")
_ENTITY_RE = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_BLANK_LINES_RE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_FOLD_SEP_RE = re.compile(r"[\s_\-]+")


def to_nfc(value: str) -> str:
    """Return the NFC form of a string (cheap when it already is NFC)."""
    if value.isascii():
        return value
    # Decomposed Vietnamese (NFD, Windows-1258) carries these tone marks: normalize at once
    # rather than paying for is_normalized's full check first.
    if any(mark in value for mark in _TONE_MARKS) or not unicodedata.is_normalized("NFC", value):
        return unicodedata.normalize("NFC", value)
    return value


def remove_control_chars(value: str) -> str:
    """Turn line breaks into \\n and remove every other control character except \\t."""
    # Fast path (C speed): no control character, once \n and \t are set aside.
    if value.replace("\n", " ").replace("\t", " ").isprintable():
        return value
    # Non-printable but harmless characters (no-break space...) are common: check cheaply.
    if any(char in value for char in _LINE_BREAK_CHARS):
        value = _LINE_BREAKS_RE.sub("\n", value)
    if _CONTROL_RE.search(value) is None:
        return value
    return _CONTROL_RE.sub("", value)


def looks_like_html(value: str) -> bool:
    """Tell whether a value holds HTML tags or entities."""
    # Try the patterns only where a '<' or '&' is: long texts have few of them.
    for mark, pattern in (("<", _TAG_RE), ("&", _ENTITY_RE)):
        start = value.find(mark)
        while start != -1:
            if pattern.match(value, start):
                return True
            start = value.find(mark, start + 1)
    return False


class _TextExtractor(HTMLParser):
    # Paragraph-level tags are separated by a blank line, line-level tags start a new line.
    _PARAGRAPH = frozenset((
        "address", "article", "aside", "blockquote", "div", "dl", "footer", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "ol", "p", "pre", "section", "table", "ul",
    ))  # fmt: skip
    _LINE = frozenset(("br", "dd", "dt", "hr", "li", "tr"))
    _SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in self._LINE:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._LINE:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._PARAGRAPH:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(value: str) -> str:
    """Strip HTML tags and entities to plain text, keeping paragraph breaks."""
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


@dataclass(slots=True)
class CleanText:
    """A cleaned value and, when it held HTML, the original markup."""

    text: str
    html: str | None = None


def clean_text(value: str, *, single_line: bool = False) -> CleanText:
    """Normalize a text value: line breaks, control characters, NFC, HTML, outer whitespace."""
    value = to_nfc(remove_control_chars(value))
    html = None
    if looks_like_html(value):
        html = value
        value = html_to_text(value)
    if single_line:
        value = " ".join(value.split())
    return CleanText(value.strip(), html)


def fold_key(value: str) -> str:
    """Return a lookup key without case, diacritics or separator differences."""
    value = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    value = "".join(c for c in value if not unicodedata.combining(c))
    return _FOLD_SEP_RE.sub(" ", value.casefold()).strip()


def detect_encoding(head: bytes) -> str:
    """Guess a CSV's encoding from its first bytes: utf-8-sig, utf-16, utf-8 or cp1258."""
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still UTF-8.
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return "cp1258"
    return "utf-8"


@dataclass(slots=True)
class DecodeStats:
    """What the line decoder saw: the detected encoding and lines that needed a fallback."""

    encoding: str = "utf-8"
    fallback_lines: list[int] = field(default_factory=list)

    @property
    def effective(self) -> str:
        """Name the encoding to report, ``mixed`` when lines disagreed."""
        return "mixed" if self.fallback_lines else self.encoding


def decode_lines(
    lines: Iterable[bytes], stats: DecodeStats | None = None, *, encoding: str | None = None
) -> Iterator[str]:
    """Decode byte lines as UTF-8 (BOM removed) or Windows-1258, line by line, keeping ends.

    Unless ``encoding`` forces one, the encoding is guessed from the first line that is not
    plain ASCII; a line that does not decode in it is decoded with the other one and its
    number recorded in ``stats``.
    """
    stats = stats if stats is not None else DecodeStats()
    decided = encoding is not None
    if encoding is not None:
        stats.encoding = "cp1258" if encoding == "cp1258" else "utf-8"
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[3:]
            stats.encoding, decided = "utf-8-sig", True
        if b"\x00" in raw:
            raw = raw.replace(b"\x00", b"")
        if raw.isascii():
            yield raw.decode("ascii")
            continue
        if not decided:
            stats.encoding, decided = detect_encoding(raw).replace("utf-8-sig", "utf-8"), True
        primary = "cp1258" if stats.encoding == "cp1258" else "utf-8"
        try:
            yield raw.decode(primary)
        except UnicodeDecodeError:
            stats.fallback_lines.append(number)
            other = "utf-8" if primary == "cp1258" else "cp1258"
            try:
                yield raw.decode(other)
            except UnicodeDecodeError:
                yield raw.decode(primary, errors="replace")


def sniff_delimiter(header: str, candidates: str = ",;\t|") -> str:
    """Pick the separator that occurs most often outside quotes in a header line."""
    counts = dict.fromkeys(candidates, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(candidates, key=lambda c: counts[c])
    return best if counts[best] else ","


def _encode_cp1258_char(char: str) -> bytes:
    """Encode one letter as the composed base cp1258 has plus its remaining tone mark."""
    decomposed = unicodedata.normalize("NFD", char)
    base, marks = decomposed[0], list(decomposed[1:])
    # Keep the composed letter cp1258 has (e.g. "ê" of "ệ") and write the rest as marks.
    for keep in itertools.chain.from_iterable(
        itertools.combinations(marks, n) for n in range(len(marks), -1, -1)
    ):
        rest = marks.copy()
        for mark in keep:
            rest.remove(mark)
        try:
            return (unicodedata.normalize("NFC", base + "".join(keep)) + "".join(rest)).encode(
                "cp1258"
            )
        except UnicodeEncodeError:
            continue
    return b"?"


@cache
def _cp1258_table() -> dict[int, str]:
    """Map every letter cp1258 lacks to the composed base + tone mark it does have."""
    table = {}
    for code in range(0xC0, 0x2000):
        char = chr(code)
        try:
            char.encode("cp1258")
        except UnicodeEncodeError:
            encoded = _encode_cp1258_char(char)
            if encoded != b"?":
                table[code] = encoded.decode("cp1258")
    return table


def encode_cp1258(text: str) -> bytes:
    """Encode text as Windows-1258 (base letter + combining tone mark), for building exports."""
    text = unicodedata.normalize("NFC", text).translate(_cp1258_table())
    return text.encode("cp1258", errors="replace")
