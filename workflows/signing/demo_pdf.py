"""Make sample Vietnamese official documents (PDF) for tests, benchmarks and the demo seed."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from PIL import Image

from .fonts import font_path

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True)
class SampleDocument:
    """What the sample document says (defaults: a decision signed by a deputy)."""

    agency: str = "SỞ NỘI VỤ TỈNH DEMO"
    parent: str = "UBND TỈNH DEMO"
    number: str = "15/QĐ-SNV"
    place_date: str = "Demo, ngày 05 tháng 01 năm 2026"
    doc_type: str = "QUYẾT ĐỊNH"
    summary: str = "Về việc ban hành Quy chế công tác văn thư"
    authority: str | None = "KT. GIÁM ĐỐC"
    title: str = "PHÓ GIÁM ĐỐC"
    signer: str = "Trần Thị Bình"
    paragraphs: int = 4


def _fonts() -> tuple[str, str]:
    regular, bold = _DEJAVU / "DejaVuSerif.ttf", _DEJAVU / "DejaVuSerif-Bold.ttf"
    if regular.exists() and bold.exists():
        return str(regular), str(bold)
    return str(font_path()), str(font_path(bold=True))


def _noise_jpeg(size: int, seed: int) -> io.BytesIO:
    """Return an incompressible scan-like JPEG, the same for the same seed."""
    noise = random.Random(seed).randbytes(size * size * 3)  # noqa: S311 - not security
    image = Image.frombytes("RGB", (size, size), noise)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    buffer.seek(0)
    return buffer


def make_sample_pdf(
    doc: SampleDocument | None = None, *, pages: int = 1, filler_mb: float = 0.0
) -> bytes:
    """Return an A4 official document whose last page ends with the signature block.

    ``filler_mb`` adds pages with incompressible scanned-like images until the file has
    about that many extra megabytes (for benchmarks on large files).
    """
    doc = doc or SampleDocument()
    regular, bold = _fonts()
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_auto_page_break(True, margin=56)
    pdf.set_margins(85, 56, 56)
    pdf.add_font("Body", "", regular)
    pdf.add_font("Body", "B", bold)
    pdf.set_title(f"{doc.doc_type} {doc.number}")
    pdf.add_page()
    _header(pdf, doc)
    body = (
        "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác "
        "văn thư; theo đề nghị của Chánh Văn phòng, quyết định ban hành kèm theo Quyết định này "
        "Quy chế công tác văn thư, lưu trữ của cơ quan. Các đơn vị, cá nhân có liên quan chịu "
        "trách nhiệm thi hành Quyết định này kể từ ngày ký."
    )
    pdf.set_font("Body", "", 13)
    for page in range(pages):
        if page:
            pdf.add_page()
        for i in range(doc.paragraphs):
            pdf.multi_cell(0, 18, f"Điều {page * doc.paragraphs + i + 1}. {body}", align="J")
            pdf.ln(4)
    _signature_block(pdf, doc)
    extra = int(filler_mb * 1024 * 1024)
    seed = 0
    while extra > 0:
        pdf.add_page()
        image = _noise_jpeg(700, seed)
        extra -= len(image.getbuffer())
        pdf.image(image, x=85, y=80, w=420)
        seed += 1
    return bytes(pdf.output())


def _header(pdf: FPDF, doc: SampleDocument) -> None:
    pdf.set_font("Body", "", 12)
    left, right = 85, 300
    pdf.set_xy(left - 30, 56)
    pdf.cell(230, 16, doc.parent, align="C")
    pdf.set_xy(right, 56)
    pdf.set_font("Body", "B", 12)
    pdf.cell(250, 16, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C")
    pdf.set_xy(left - 30, 72)
    pdf.cell(230, 16, doc.agency, align="C")
    pdf.set_xy(right, 72)
    pdf.cell(250, 16, "Độc lập - Tự do - Hạnh phúc", align="C")
    pdf.set_font("Body", "", 12)
    pdf.set_xy(left - 30, 96)
    pdf.cell(230, 16, f"Số: {doc.number}", align="C")
    pdf.set_xy(right, 96)
    pdf.cell(250, 16, doc.place_date, align="C")
    pdf.set_xy(left, 130)
    pdf.set_font("Body", "B", 14)
    pdf.cell(0, 18, doc.doc_type, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Body", "B", 13)
    pdf.cell(0, 18, doc.summary, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(16)


def _signature_block(pdf: FPDF, doc: SampleDocument) -> None:
    if pdf.get_y() > pdf.h - 220:
        pdf.add_page()
    top = pdf.get_y() + 20
    pdf.set_font("Body", "B", 11)
    pdf.set_xy(85, top)
    pdf.cell(200, 14, "Nơi nhận:")
    pdf.set_font("Body", "", 10)
    for i, line in enumerate(("- Như Điều 3;", "- Lưu: VT, VP.")):
        pdf.set_xy(85, top + 16 + 13 * i)
        pdf.cell(200, 13, line)
    x, width = 320, 220
    pdf.set_font("Body", "B", 13)
    y = top
    for heading in (doc.authority, doc.title):
        if heading:
            pdf.set_xy(x, y)
            pdf.cell(width, 17, heading, align="C")
            y += 17
    pdf.set_xy(x, y + 80)
    pdf.cell(width, 17, doc.signer, align="C")
