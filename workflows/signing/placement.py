"""Where a visible signature goes: a fixed box, next to a text, over a field, or a page corner."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal, cast

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from .errors import PlacementError

Rect = tuple[float, float, float, float]
PDFTOTEXT = shutil.which("pdftotext")
Corner = Literal["top-right", "top-left", "bottom-right", "bottom-left"]


@dataclass(frozen=True)
class Box:
    """An explicit box in PDF points (origin bottom-left); page is 0-based, -1 is the last."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class NearText:
    """A box next to the first occurrence of a text (searched from the last page back).

    ``where="above"`` puts the box on top of the text line (the leader's signature between
    title and name), ``"over"`` centres it on the text, ``"below"`` under it.
    """

    text: str
    page: int | None = None
    width: float = 160.0
    height: float = 64.0
    gap: float = 2.0
    where: Literal["above", "over", "below"] = "above"


@dataclass(frozen=True)
class OverField:
    """A square box overlapping ``overlap`` of an existing field on its left (the seal)."""

    field_name: str | None = None
    overlap: float = 1 / 3
    size: float | None = None


@dataclass(frozen=True)
class PageCorner:
    """A box in a page corner (attachments: top right of page 1; initials: bottom right)."""

    corner: Corner = "top-right"
    page: int = 0
    width: float = 170.0
    height: float = 28.0
    margin: float = 18.0
    shift: float = 0.0  # move towards the page centre, e.g. to line up several initials


Placement = Box | NearText | OverField | PageCorner


@dataclass(frozen=True)
class Spot:
    """A resolved placement: 0-based page index and rectangle."""

    page: int
    rect: Rect


def page_count(reader: PdfFileReader) -> int:
    """Return the number of pages."""
    return int(reader.root["/Pages"]["/Count"])


def _page_index(reader: PdfFileReader, page: int) -> int:
    count = page_count(reader)
    index = page + count if page < 0 else page
    if not 0 <= index < count:
        raise PlacementError(f"Văn bản không có trang {page + 1 if page >= 0 else page}.")
    return index


def _inherited(page: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    node: generic.DictionaryObject | None = page
    while node is not None:
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


def page_box(reader: PdfFileReader, index: int) -> Rect:
    """Return the visible box (crop box, else media box) of a page."""
    page_ref, _ = reader.find_page_for_modification(index)
    page = page_ref.get_object()
    box = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
    if box is None:
        return (0.0, 0.0, 595.28, 841.89)
    x0, y0, x1, y1 = (float(v) for v in cast(generic.ArrayObject, box))
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def resolve(placement: Placement, reader: PdfFileReader, pdf_bytes: bytes) -> Spot:
    """Turn a placement into a page and rectangle inside that page."""
    if isinstance(placement, Box):
        index = _page_index(reader, placement.page)
        return Spot(
            index,
            _clip(
                (placement.x0, placement.y0, placement.x1, placement.y1), page_box(reader, index)
            ),
        )
    if isinstance(placement, PageCorner):
        return _corner(placement, reader)
    if isinstance(placement, OverField):
        return _over_field(placement, reader)
    return _near_text(placement, reader, pdf_bytes)


def _clip(rect: Rect, page: Rect) -> Rect:
    x0, y0, x1, y1 = rect
    px0, py0, px1, py1 = page
    w, h = abs(x1 - x0), abs(y1 - y0)
    if w < 4 or h < 4:
        raise PlacementError("Ô chữ ký quá nhỏ.")
    x0 = min(max(min(x0, x1), px0), px1 - w)
    y0 = min(max(min(y0, y1), py0), py1 - h)
    return (x0, y0, x0 + w, y0 + h)


def _corner(spec: PageCorner, reader: PdfFileReader) -> Spot:
    index = _page_index(reader, spec.page)
    px0, py0, px1, py1 = page_box(reader, index)
    left = spec.corner.endswith("left")
    top = spec.corner.startswith("top")
    x0 = px0 + spec.margin + spec.shift if left else px1 - spec.margin - spec.width - spec.shift
    y0 = py1 - spec.margin - spec.height if top else py0 + spec.margin
    return Spot(index, _clip((x0, y0, x0 + spec.width, y0 + spec.height), (px0, py0, px1, py1)))


def signature_widgets(reader: PdfFileReader) -> list[tuple[str, int, Rect, bool]]:
    """List signature fields with a widget: (name, page index, rect, signed)."""
    try:
        fields = reader.root["/AcroForm"]["/Fields"]
    except KeyError:
        return []
    pages = {reader.find_page_for_modification(i)[0].idnum: i for i in range(page_count(reader))}
    found: list[tuple[str, int, Rect, bool]] = []

    def walk(items: generic.ArrayObject, prefix: str) -> None:
        for ref in items:
            node = ref.get_object()
            name = prefix + str(node.get("/T", ""))
            if node.get("/FT") == "/Sig" or "/Rect" in node:
                widget = node if "/Rect" in node else node["/Kids"][0].get_object()
                page_ref = widget.get("/P")
                page = -1
                if isinstance(page_ref, generic.IndirectObject):
                    page = pages.get(page_ref.idnum, -1)
                if page < 0:
                    page = _find_widget_page(reader, ref, len(pages))
                rect = [float(v) for v in widget["/Rect"]]
                box = (
                    min(rect[0], rect[2]),
                    min(rect[1], rect[3]),
                    max(rect[0], rect[2]),
                    max(rect[1], rect[3]),
                )
                if node.get("/FT", "/Sig") == "/Sig":
                    found.append((name, page, box, "/V" in node))
            elif "/Kids" in node:
                walk(node["/Kids"], name + ".")

    walk(fields, "")
    return found


def _find_widget_page(reader: PdfFileReader, field_ref: generic.PdfObject, count: int) -> int:
    target = getattr(field_ref, "idnum", None)
    for i in range(count):
        page = reader.find_page_for_modification(i)[0].get_object()
        for annot in page.get("/Annots", ()):
            if getattr(annot, "idnum", None) == target:
                return i
    return -1


def _over_field(spec: OverField, reader: PdfFileReader) -> Spot:
    widgets = [w for w in signature_widgets(reader) if w[1] >= 0 and w[2][2] - w[2][0] > 1]
    if spec.field_name is not None:
        widgets = [w for w in widgets if w[0] == spec.field_name]
    else:
        widgets = [w for w in widgets if w[3]]
    if not widgets:
        raise PlacementError("Không tìm thấy chữ ký của người có thẩm quyền để đóng dấu.")
    _, index, (x0, y0, x1, y1), _ = widgets[-1]
    side = spec.size or min(max((y1 - y0) * 1.5, 70.0), 120.0)
    right = x0 + (x1 - x0) * spec.overlap
    cy = (y0 + y1) / 2
    rect = (right - side, cy - side / 2, right, cy + side / 2)
    return Spot(index, _clip(rect, page_box(reader, index)))


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().casefold()


def find_text(pdf_bytes: bytes, text: str, first: int, last: int) -> tuple[int, Rect] | None:
    """Find the last occurrence of text on pages first..last (0-based) with pdftotext.

    Returns the page index and the text rectangle in pdftotext units (points from the
    top-left corner of the visible page box).
    """
    if PDFTOTEXT is None:
        raise PlacementError("Máy chủ thiếu công cụ pdftotext (poppler-utils) để tìm vị trí ký.")
    needle = _normalize(text)
    if not needle:
        raise PlacementError("Chưa có nội dung để tìm vị trí ký.")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(pdf_bytes)
        handle.flush()
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [
                PDFTOTEXT,
                "-q",
                "-bbox-layout",
                "-f",
                str(first + 1),
                "-l",
                str(last + 1),
                handle.name,
                "-",
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        return None
    return _search_xml(result.stdout, needle, first)


_NS = "{http://www.w3.org/1999/xhtml}"


def _search_xml(xml: bytes, needle: str, first_page: int) -> tuple[int, Rect] | None:
    root = ET.fromstring(xml)  # noqa: S314 - produced by our own pdftotext call
    hit: tuple[int, Rect] | None = None
    for page_no, page in enumerate(root.iter(f"{_NS}page")):
        for line in page.iter(f"{_NS}line"):
            parts: list[str] = []
            spans: list[tuple[int, int, ET.Element]] = []
            pos = 0
            for word in line.iter(f"{_NS}word"):
                token = _normalize(word.text or "")
                if not token:
                    continue
                if parts:
                    pos += 1
                spans.append((pos, pos + len(token), word))
                parts.append(token)
                pos += len(token)
            at = " ".join(parts).find(needle)
            if at < 0:
                continue
            end = at + len(needle)
            chosen = [w for s, e, w in spans if s < end and e > at]
            hit = (
                first_page + page_no,
                (
                    min(float(w.get("xMin", 0)) for w in chosen),
                    min(float(w.get("yMin", 0)) for w in chosen),
                    max(float(w.get("xMax", 0)) for w in chosen),
                    max(float(w.get("yMax", 0)) for w in chosen),
                ),
            )
    return hit


def _near_text(spec: NearText, reader: PdfFileReader, pdf_bytes: bytes) -> Spot:
    count = page_count(reader)
    if spec.page is not None:
        index = _page_index(reader, spec.page)
        hit = find_text(pdf_bytes, spec.text, index, index)
    else:
        # the signature block is almost always on the last page: look there first
        hit = find_text(pdf_bytes, spec.text, count - 1, count - 1)
        if hit is None and count > 1:
            hit = find_text(pdf_bytes, spec.text, 0, count - 2)
    if hit is None:
        raise PlacementError(f"Không tìm thấy “{spec.text}” trong văn bản để đặt chữ ký.")
    index, (tx0, ty0, tx1, ty1) = hit
    px0, py0, px1, py1 = page_box(reader, index)
    # pdftotext measures from the top-left corner of the visible box
    left, right = px0 + tx0, px0 + tx1
    top, bottom = py1 - ty0, py1 - ty1
    width = max(spec.width, right - left)
    cx = (left + right) / 2
    if spec.where == "above":
        y0 = top + spec.gap
    elif spec.where == "below":
        y0 = bottom - spec.gap - spec.height
    else:
        y0 = (top + bottom) / 2 - spec.height / 2
    rect = (cx - width / 2, y0, cx + width / 2, y0 + spec.height)
    return Spot(index, _clip(rect, (px0, py0, px1, py1)))
