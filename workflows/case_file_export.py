"""Export a case file: a PDF bundle (cover, index, the documents) and XML metadata.

The cover and the XML carry the metadata Decree 30 asks to keep for electronic records: the
file code (agency identifier, year, file notation), title, retention, dates, counts; and per
document its ordinal, type, number, notation, date, issuer, subject, signer, pages and, for
incoming documents, the arrival number and date. XML element names follow the metadata
names of Circular 02/2019/TT-BNV (FileCode, FileNotation, Maintenance, DocTotal, ...).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError

from models.case_file import CASE_FILE_STATES, CaseFile
from models.document import DIRECTIONS, Document
from models.organization import Agency
from models.user import User
from workflows import storage
from workflows.actions import VN_TZ
from workflows.errors import DomainError, Forbidden

log = logging.getLogger(__name__)
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def document_pdf_bytes(doc: Document) -> bytes | None:
    """Return the bytes of a document's current PDF, or None when it has none or it is lost."""
    pdf = doc.current_pdf
    if pdf is None:
        return None
    try:
        return storage.read_file(pdf.file_id)
    except DomainError:
        log.warning("PDF of document %s is missing from storage", doc.pk)
        return None


def _reader(data: bytes | None) -> PdfReader | None:
    if not data:
        return None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return None
        _ = len(reader.pages)
    except (PyPdfError, ValueError, OSError):
        return None
    return reader


def document_pages(doc: Document) -> int:
    """Return a document's page count: as recorded, else counted in its PDF, else 0."""
    if doc.pages:
        return int(doc.pages)
    reader = _reader(document_pdf_bytes(doc))
    return len(reader.pages) if reader else 0


def check_readable(user: User, case_file: CaseFile) -> list[Document]:
    """Return the file's documents in order; refuse when `user` may not read one of them."""
    from workflows.case_file import documents_for

    rows = documents_for(user, case_file)
    if not all(readable for _, _, readable in rows):
        raise Forbidden(
            "Hồ sơ có văn bản bạn không có quyền xem (theo độ mật), nên không xuất được."
        )
    return [doc for _, doc, _ in rows]


# Metadata shared by the cover and the XML -----------------------------------------------------


def _day(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def _arrival_day(doc: Document) -> dt.date | None:
    if doc.arrival_at is None:
        return None
    at = doc.arrival_at if doc.arrival_at.tzinfo else doc.arrival_at.replace(tzinfo=dt.UTC)
    return at.astimezone(VN_TZ).date()


def _number_notation(doc: Document) -> str:
    if doc.notation:
        return str(doc.notation)
    return f"{doc.number:02d}" if doc.number is not None else ""


def file_metadata(case_file: CaseFile) -> list[tuple[str, str]]:
    """Return the file's metadata as (Vietnamese label, value) rows for the cover."""
    agency = Agency.current()
    owner = ", ".join(
        p
        for p in (
            case_file.owner_user.full_name if case_file.owner_user else "",
            case_file.owner_unit.name if case_file.owner_unit else "",
        )
        if p
    )
    state = CASE_FILE_STATES[case_file.state]
    if case_file.transferred_at:
        state += " ngày " + case_file.transferred_at.astimezone(VN_TZ).strftime("%d/%m/%Y")
    return [
        ("Mã hồ sơ", case_file.full_code(agency)),
        ("Mã định danh cơ quan", (agency.organ_id or "") if agency else ""),
        ("Năm hình thành hồ sơ", str(case_file.year)),
        ("Số, ký hiệu hồ sơ", case_file.code),
        ("Tiêu đề hồ sơ", case_file.title),
        ("Thời hạn bảo quản", case_file.retention.label),
        ("Thời gian bắt đầu", _day(case_file.start_on)),
        ("Thời gian kết thúc", _day(case_file.end_on)),
        ("Tổng số văn bản", str(case_file.document_count or len(case_file.items))),
        ("Tổng số trang", str(case_file.page_count or "")),
        ("Ngôn ngữ", case_file.language or "Tiếng Việt"),
        ("Người, đơn vị lập hồ sơ", owner),
        ("Tình trạng", state),
    ]


# PDF ------------------------------------------------------------------------------------------


class _Bundle(FPDF):
    """The pages VănThư writes: cover, index, and a page for each document without a PDF."""

    numbered = True

    def footer(self) -> None:
        if self.numbered:
            self.set_y(-15)
            self.set_font("Body", "", 8)
            self.cell(0, 10, f"Trang {self.page_no()}", align="C")


@dataclass
class _Part:
    doc: Document
    reader: PdfReader | None  # None: a page saying why the PDF is missing takes its place
    reason: str
    sheets: int

    @property
    def pages(self) -> int:
        return len(self.reader.pages) if self.reader else 1


def _fonts(pdf: FPDF) -> None:
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if not regular.exists():
        from workflows.signing.fonts import font_path

        regular, bold = font_path(), font_path(bold=True)
    pdf.add_font("Body", "", str(regular))
    pdf.add_font("Body", "B", str(bold))


def _cover(pdf: FPDF, case_file: CaseFile, agency: Agency | None) -> None:
    pdf.add_page()
    pdf.set_font("Body", "B", 12)
    if agency is not None:
        if agency.parent_name:
            pdf.cell(0, 6, agency.parent_name.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.cell(0, 6, agency.name.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(18)
    pdf.set_font("Body", "B", 22)
    pdf.cell(0, 12, "HỒ SƠ", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Body", "B", 14)
    pdf.multi_cell(0, 8, case_file.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("Body", "", 11)
    with pdf.table(col_widths=(55, 135), first_row_as_headings=False, line_height=7) as table:
        for label, value in file_metadata(case_file):
            row = table.row()
            row.cell(label, style=FontFace(emphasis="BOLD"))
            row.cell(value)
    pdf.ln(6)
    pdf.set_font("Body", "", 9)
    pdf.multi_cell(
        0,
        5,
        "Bản tổng hợp để đọc và tra cứu. Chữ ký số của từng văn bản được kiểm tra trên tệp "
        "gốc lưu trong hệ thống.",
    )


def _index(pdf: FPDF, parts: list[_Part], starts: list[int]) -> None:
    pdf.add_page()
    pdf.set_font("Body", "B", 13)
    pdf.cell(0, 8, "MỤC LỤC VĂN BẢN", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Body", "", 8.5)
    headings = ("STT", "Số, ký hiệu", "Ngày", "Tác giả", "Trích yếu", "Số tờ", "Trang")
    with pdf.table(
        col_widths=(9, 27, 20, 33, 77, 11, 13),
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4.5,
        text_align=("CENTER", "LEFT", "LEFT", "LEFT", "LEFT", "CENTER", "CENTER"),
    ) as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for n, (part, start) in enumerate(zip(parts, starts, strict=True), 1):
            doc = part.doc
            row = table.row()
            row.cell(str(n))
            arrival = f"\nSố đến {doc.arrival_number}" if doc.arrival_number else ""
            row.cell(_number_notation(doc) + arrival)
            row.cell(_day(doc.issued_on))
            row.cell(doc.issuer or "")
            marks = " [dữ liệu chuyển đổi]" if doc.migrated else ""
            row.cell(f"{doc.subject}{marks}")
            row.cell(str(part.sheets or ""))
            row.cell(str(start))


def _render(case_file: CaseFile, parts: list[_Part], cover_pages: int) -> tuple[bytes, int]:
    """Render cover, index and placeholder pages, numbering as if the cover had that many pages.

    Return the PDF and how many pages the cover and index really took.
    """
    agency = Agency.current()
    starts, page = [], cover_pages + 1
    for part in parts:
        starts.append(page)
        page += part.pages
    pdf = _Bundle(format="A4", unit="mm")
    _fonts(pdf)
    pdf.set_title(f"Hồ sơ {case_file.full_code(agency)}")
    pdf.set_creator("VănThư")
    pdf.set_auto_page_break(True, margin=18)
    _cover(pdf, case_file, agency)
    _index(pdf, parts, starts)
    rendered = pdf.page_no()
    for part in parts:
        if part.reader is None:
            pdf.numbered = False
            pdf.add_page()
            pdf.set_font("Body", "B", 12)
            pdf.multi_cell(0, 7, f"{_number_notation(part.doc)} {part.doc.subject}".strip())
            pdf.ln(4)
            pdf.set_font("Body", "", 11)
            pdf.multi_cell(0, 6, part.reason)
    return bytes(pdf.output()), rendered


def export_pdf(case_file: CaseFile, user: User) -> bytes:
    """Return the file as one PDF: cover sheet, document index, then each document."""
    parts = []
    for doc in check_readable(user, case_file):
        data = document_pdf_bytes(doc)
        reader = _reader(data)
        reason = ""
        if reader is None:
            reason = (
                "Văn bản chưa có tệp PDF trong hệ thống (bản giấy hoặc tệp định dạng khác)."
                if data is None
                else "Tệp PDF của văn bản bị hỏng hoặc được mã hóa, không ghép được."
            )
        parts.append(_Part(doc, reader, reason, doc.pages or (len(reader.pages) if reader else 0)))
    # The index shows where each document starts, which depends on the index's own length:
    # render with a guess, and once more in the rare case the guess was wrong.
    data, cover_pages = _render(case_file, parts, 2)
    if cover_pages != 2:
        data, cover_pages = _render(case_file, parts, cover_pages)
    own = PdfReader(io.BytesIO(data))
    writer = PdfWriter()
    writer.append(own, pages=(0, cover_pages))
    writer.add_outline_item(title="Bìa và mục lục hồ sơ", page_number=0)
    placeholder = cover_pages
    for n, part in enumerate(parts, 1):
        start = len(writer.pages)
        if part.reader is not None:
            writer.append(part.reader)
        else:
            writer.append(own, pages=(placeholder, placeholder + 1))
            placeholder += 1
        label = _number_notation(part.doc) or part.doc.subject[:60]
        writer.add_outline_item(title=f"{n}. {label}", page_number=start)
    writer.add_metadata(
        {"/Title": f"Hồ sơ {case_file.full_code()}: {case_file.title}", "/Creator": "VănThư"}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# XML ------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, value: Any, **attrs: str) -> ET.Element | None:
    """Add `<tag>value</tag>`; an unknown value (None) leaves the element out."""
    if value is None:
        return None
    element = ET.SubElement(parent, tag, attrs)
    if value is not None and value != "":
        element.text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return element


def _document_element(parent: ET.Element, n: int, doc: Document) -> None:
    el = ET.SubElement(parent, "Document", {"ordinal": str(n), "id": str(doc.pk)})
    _sub(el, "DocOrdinal", n)
    _sub(el, "Direction", doc.direction, label=DIRECTIONS.get(doc.direction, ""))
    _sub(el, "TypeName", doc.doc_type_name or "")
    _sub(el, "CodeNumber", doc.number)
    _sub(el, "CodeNotation", doc.notation or "")
    _sub(el, "IssuedDate", doc.issued_on)
    _sub(el, "OrganName", doc.issuer or "")
    _sub(el, "Subject", doc.subject)
    signer = ET.SubElement(el, "Signer")
    _sub(signer, "Competence", doc.signer_authority or "")
    _sub(signer, "Position", doc.signer_title or "")
    _sub(signer, "FullName", doc.signer_name or "")
    _sub(el, "PageAmount", document_pages(doc) or None)
    _sub(el, "Language", "Tiếng Việt")
    _sub(el, "Priority", doc.urgency or 0)
    recipients = ET.SubElement(el, "Recipients")
    for name in list(doc.recipients_to) + list(doc.recipients):
        _sub(recipients, "Recipient", name)
    if doc.deadline_on:
        _sub(el, "DueDate", doc.deadline_on)
    if doc.direction == "incoming":
        _sub(el, "ArrivalNumber", doc.arrival_number)
        _sub(el, "ArrivalDate", _arrival_day(doc))
    if doc.migrated:
        _sub(el, "LegacyId", doc.legacy_id or "", system=doc.legacy_system or "")
    pdf = doc.current_pdf
    if pdf is not None:
        _sub(el, "File", pdf.filename, sha256=pdf.sha256, mime=pdf.mime)


def export_xml(case_file: CaseFile, user: User) -> bytes:
    """Return the file's metadata as UTF-8 XML, one Document element per document."""
    docs = check_readable(user, case_file)
    agency = Agency.current()
    root = ET.Element("CaseFile", {"id": str(case_file.pk)})
    _sub(root, "FileCode", case_file.full_code(agency))
    _sub(root, "OrganId", (agency.organ_id or "") if agency else "")
    _sub(root, "OrganName", agency.name if agency else "")
    _sub(root, "FileCatalog", case_file.year)
    _sub(root, "FileNotation", case_file.code)
    _sub(root, "Title", case_file.title)
    retention = case_file.retention
    _sub(
        root,
        "Maintenance",
        retention.label,
        years="" if retention.permanent else str(retention.years or ""),
        permanent="true" if retention.permanent else "false",
    )
    _sub(root, "Language", case_file.language or "Tiếng Việt")
    _sub(root, "StartDate", case_file.start_on)
    _sub(root, "EndDate", case_file.end_on)
    _sub(root, "DocTotal", case_file.document_count or len(docs))
    _sub(root, "PageTotal", case_file.page_count)
    _sub(root, "State", case_file.state, label=CASE_FILE_STATES[case_file.state])
    if case_file.transferred_at:
        _sub(root, "TransferDate", case_file.transferred_at.astimezone(VN_TZ).date())
    owner = ET.SubElement(root, "Owner")
    _sub(owner, "Unit", case_file.owner_unit.name if case_file.owner_unit else "")
    _sub(owner, "Person", case_file.owner_user.full_name if case_file.owner_user else "")
    _sub(root, "Description", case_file.note or "")
    listing = ET.SubElement(root, "Documents")
    for n, doc in enumerate(docs, 1):
        _document_element(listing, n, doc)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
