"""A small, cached TrueType font engine for stamp text (Vietnamese, left-to-right, no shaping).

Vietnamese in NFC needs no shaping: every letter with its marks is one precomposed glyph
in the stamp font. So a stamp needs a cmap lookup, advance widths and an embedded subset.
Metrics are parsed once per process and subsets are cached by glyph set, which keeps a
visible signature to a few milliseconds instead of the ~15 ms pyHanko's GlyphAccumulator
spends loading and subsetting the font for every signature.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import unicodedata
import zlib
from collections import OrderedDict
from functools import cache
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from .fonts import font_path

logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

# glyphs every subset carries, so stamps that differ only in numbers and times share one
BASE_TEXT = "".join(chr(c) for c in range(0x20, 0x7F)) + "ĐđÁÀẢÃẠÂĂÉÊÍÓÔƠÚƯÝ"


class StampFont:
    """Metrics and subsets of one TrueType font, shared by every document in the process."""

    def __init__(self, path: Path, subset_cache_size: int = 128) -> None:
        self.path = path
        self._data = path.read_bytes()
        tt = TTFont(io.BytesIO(self._data), lazy=True)
        scale = 1000 / tt["head"].unitsPerEm
        order = tt.getGlyphOrder()
        gid_of = {name: gid for gid, name in enumerate(order)}
        metrics = tt["hmtx"].metrics
        self.ps_name = str(tt["name"].getDebugName(6))
        self.gids = {cp: gid_of[name] for cp, name in tt.getBestCmap().items()}
        self.widths = {gid_of[name]: round(adv * scale) for name, (adv, _lsb) in metrics.items()}
        head, hhea, os2 = tt["head"], tt["hhea"], tt["OS/2"]
        self.ascent = round(hhea.ascent * scale)
        self.descent = round(hhea.descent * scale)
        self.bbox = [round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)]
        self.cap_height = round(getattr(os2, "sCapHeight", 700) * scale)
        self.italic_angle = float(getattr(tt["post"], "italicAngle", 0))
        self.stem_v = int(10 + 220 * (os2.usWeightClass - 50) / 900)
        self.missing = self.gids.get(ord("?"), 0)
        self._subsets: OrderedDict[frozenset[int], bytes] = OrderedDict()
        self._subset_cache_size = subset_cache_size
        self._lock = threading.Lock()
        self._base = frozenset(self.glyphs(BASE_TEXT))

    def glyphs(self, text: str) -> list[int]:
        """Map NFC text to glyph ids ('?' for characters the font lacks)."""
        return [self.gids.get(ord(ch), self.missing) for ch in unicodedata.normalize("NFC", text)]

    def text_width(self, text: str, size: float) -> float:
        """Return the advance width of text at a font size, in points."""
        return sum(self.widths.get(g, 0) for g in self.glyphs(text)) * size / 1000

    def font_program(self, gids: frozenset[int]) -> tuple[str, bytes]:
        """Return a subset tag and the Flate-compressed TrueType subset holding these glyphs."""
        key = gids | self._base
        with self._lock:
            program = self._subsets.get(key)
            if program is not None:
                self._subsets.move_to_end(key)
        if program is None:
            program = self._make_subset(key)
            with self._lock:
                self._subsets[key] = program
                while len(self._subsets) > self._subset_cache_size:
                    self._subsets.popitem(last=False)
        tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(program).digest()[:6])
        return tag, program

    def _make_subset(self, gids: frozenset[int]) -> bytes:
        tt = TTFont(io.BytesIO(self._data))
        options = subset.Options()
        options.retain_gids = True  # CID = GID, so content streams stay valid
        options.layout_features = []
        options.notdef_outline = True
        options.drop_tables += ["GPOS", "GSUB", "GDEF", "kern"]
        subsetter = subset.Subsetter(options=options)
        subsetter.populate(gids=sorted(gids | {0}))
        subsetter.subset(tt)
        buffer = io.BytesIO()
        tt.save(buffer)
        return zlib.compress(buffer.getvalue(), 6)


@cache
def stamp_font(bold: bool = False) -> StampFont:
    """Return the process-wide regular or bold stamp font."""
    return StampFont(font_path(bold=bold))


class PdfFontResource:
    """One font used by one stamp in one document: collects glyphs, then embeds a subset."""

    def __init__(self, font: StampFont) -> None:
        self.font = font
        self._to_unicode: dict[int, str] = {}

    def encode(self, text: str) -> bytes:
        """Return a PDF hex string showing text, and remember the glyphs it uses."""
        text = unicodedata.normalize("NFC", text)
        gids = self.font.glyphs(text)
        for gid, ch in zip(gids, text, strict=True):
            self._to_unicode.setdefault(gid, ch)
        return b"<" + "".join(f"{g:04X}" for g in gids).encode("ascii") + b">"

    def embed(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        """Write the Type0 font with its CIDFontType2 subset into the document."""
        font = self.font
        used = sorted(self._to_unicode)
        tag, program = font.font_program(frozenset(used))
        name = f"{tag}+{font.ps_name}"
        font_file = generic.StreamObject(
            {pdf_name("/Filter"): pdf_name("/FlateDecode")}, encoded_data=program
        )
        descriptor = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/FontDescriptor"),
                pdf_name("/FontName"): pdf_name("/" + name),
                pdf_name("/Flags"): generic.NumberObject(0b110),
                pdf_name("/FontBBox"): generic.ArrayObject(
                    generic.NumberObject(v) for v in font.bbox
                ),
                pdf_name("/ItalicAngle"): generic.FloatObject(font.italic_angle),
                pdf_name("/Ascent"): generic.NumberObject(font.ascent),
                pdf_name("/Descent"): generic.NumberObject(font.descent),
                pdf_name("/CapHeight"): generic.NumberObject(font.cap_height),
                pdf_name("/StemV"): generic.NumberObject(font.stem_v),
                pdf_name("/FontFile2"): writer.add_object(font_file),
            }
        )
        widths = generic.ArrayObject()
        for gid in used:
            widths.append(generic.NumberObject(gid))
            widths.append(generic.ArrayObject([generic.NumberObject(font.widths.get(gid, 0))]))
        cid_font = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/CIDFontType2"),
                pdf_name("/BaseFont"): pdf_name("/" + name),
                pdf_name("/CIDSystemInfo"): generic.DictionaryObject(
                    {
                        pdf_name("/Registry"): generic.pdf_string("Adobe"),
                        pdf_name("/Ordering"): generic.pdf_string("Identity"),
                        pdf_name("/Supplement"): generic.NumberObject(0),
                    }
                ),
                pdf_name("/FontDescriptor"): writer.add_object(descriptor),
                pdf_name("/CIDToGIDMap"): pdf_name("/Identity"),
                pdf_name("/W"): widths,
            }
        )
        to_unicode = generic.StreamObject(stream_data=self._cmap())
        to_unicode.compress()
        type0 = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type0"),
                pdf_name("/BaseFont"): pdf_name("/" + name),
                pdf_name("/Encoding"): pdf_name("/Identity-H"),
                pdf_name("/DescendantFonts"): generic.ArrayObject([writer.add_object(cid_font)]),
                pdf_name("/ToUnicode"): writer.add_object(to_unicode),
            }
        )
        return writer.add_object(type0)

    def _cmap(self) -> bytes:
        lines = [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
        ]
        items = sorted(self._to_unicode.items())
        for start in range(0, len(items), 100):
            chunk = items[start : start + 100]
            lines.append(f"{len(chunk)} beginbfchar")
            lines.extend(
                f"<{gid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for gid, ch in chunk
            )
            lines.append("endbfchar")
        lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
        return "\n".join(lines).encode("ascii")
