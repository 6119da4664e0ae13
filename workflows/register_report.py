"""The Decree 30 registers (incoming, outgoing, processing tracking) as PDF and XLSX."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bson import DBRef, ObjectId
from bson.errors import InvalidId
from mongoengine import Document as MongoDocument
from mongoengine import Q

from models.audit import utcnow
from models.document import ASSIGNMENT_ROLES, URGENCY_LEVELS, Document
from models.document_type import DocumentType
from models.organization import Agency, Unit
from models.register_book import VN_TZ, RegisterBook, vn_today
from models.user import SECRECY_LEVELS, User
from workflows.errors import Forbidden, ValidationFailed

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

REGISTER_KINDS = {
    "incoming": "Sổ đăng ký văn bản đến",
    "outgoing": "Sổ đăng ký văn bản đi",
    "tracking": "Sổ theo dõi việc giải quyết văn bản đến",
}

# (title, relative width in the PDF, width in XLSX characters)
COLUMNS: dict[str, list[tuple[str, int, int]]] = {
    "incoming": [
        ("Ngày đến", 17, 12),
        ("Số đến", 12, 8),
        ("Tác giả", 30, 24),
        ("Số, ký hiệu", 24, 16),
        ("Ngày tháng văn bản", 17, 12),
        ("Tên loại và trích yếu nội dung", 62, 50),
        ("Đơn vị hoặc người nhận", 38, 28),
        ("Ngày chuyển", 17, 12),
        ("Ký nhận", 18, 12),
        ("Ghi chú", 22, 18),
    ],
    "outgoing": [
        ("Số, ký hiệu văn bản", 24, 16),
        ("Ngày tháng văn bản", 17, 12),
        ("Tên loại và trích yếu nội dung", 60, 50),
        ("Người ký", 32, 24),
        ("Nơi nhận văn bản", 42, 32),
        ("Đơn vị, người nhận bản lưu", 26, 20),
        ("Số lượng bản", 12, 8),
        ("Ngày chuyển", 17, 12),
        ("Ký nhận", 18, 12),
        ("Ghi chú", 22, 18),
    ],
    "tracking": [
        ("Số đến", 12, 8),
        ("Văn bản (số, ký hiệu, ngày tháng, tác giả, trích yếu)", 85, 60),
        ("Đơn vị, người nhận", 40, 28),
        ("Thời hạn giải quyết", 20, 12),
        ("Tiến độ giải quyết", 45, 32),
        ("Số, ký hiệu văn bản trả lời", 30, 20),
        ("Ghi chú", 25, 18),
    ],
}

Cell = str | int | dt.date | None


@dataclass(frozen=True)
class RegisterFilter:
    """Which documents a register lists; `max_secrecy` is the reader's clearance."""

    book: RegisterBook | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    unit: Unit | None = None
    max_secrecy: int = 0


@dataclass
class Register:
    """A register ready to print: title lines, columns and rows."""

    kind: str
    title: str
    subtitles: list[str]
    columns: list[tuple[str, int, int]]
    rows: list[list[Cell]] = field(default_factory=list)


# Small helpers -----------------------------------------------------------------------------


def _ref_id(obj: Any, name: str) -> Any:
    """Return the id a reference field holds, without loading the referenced object."""
    value = obj._data.get(name)
    if isinstance(value, MongoDocument):
        return value.pk
    if isinstance(value, DBRef):
        return value.id
    return value


def _assignments(doc: Document) -> list[Any]:
    """Return the assignments as stored, references unresolved: no query per row.

    Reading `doc.assignments` would dereference every unit and user of every row, and
    `no_dereference()` makes mongoengine deep-copy its field table per document; the
    references are named from _Names instead.
    """
    return list(doc._data.get("assignments") or [])


def _vn_date(value: dt.datetime | None) -> dt.date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ).date()


def _vn_start(day: dt.date) -> dt.datetime:
    """Return the UTC instant at which `day` begins in Vietnam."""
    return dt.datetime.combine(day, dt.time(), VN_TZ).astimezone(dt.UTC)


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, int):
        return f"{value:02d}"
    return value


class _Names:
    """Names of units and users, loaded once per register."""

    def __init__(self) -> None:
        self.units = {u.pk: u.name for u in Unit.objects.only("name")}
        self.users = {u.pk: u.full_name for u in User.objects.only("full_name")}
        self.types = {t.pk: t.name for t in DocumentType.objects.only("name")}

    def unit(self, pk: Any) -> str:
        return self.units.get(pk, "") if pk else ""

    def user(self, pk: Any) -> str:
        if not pk:
            return ""
        try:
            return self.users.get(pk if isinstance(pk, ObjectId) else ObjectId(str(pk)), "")
        except InvalidId:
            return ""


def _type_and_subject(doc: Document, names: _Names) -> str:
    name = doc.doc_type_name or names.types.get(_ref_id(doc, "doc_type"), "")
    return f"{name}: {doc.subject}" if name else doc.subject


def _notes(doc: Document) -> str:
    notes = []
    if doc.urgency:
        notes.append(URGENCY_LEVELS.get(doc.urgency, ""))
    if doc.secrecy:
        notes.append(SECRECY_LEVELS.get(doc.secrecy, ""))
    if doc.migrated:
        notes.append("Chuyển đổi từ hệ thống cũ" + (f" ({doc.legacy_id})" if doc.legacy_id else ""))
    if doc.status_text:
        notes.append(doc.status_text)
    return "; ".join(n for n in notes if n)


def _receivers(doc: Document, names: _Names, *, lead_only: bool = False) -> str:
    order = list(ASSIGNMENT_ROLES)
    parts = []
    for a in sorted(_assignments(doc), key=lambda a: order.index(a.role)):
        if (lead_only and a.role != "lead") or a.parent_id:
            continue
        who = names.unit(_ref_id(a, "unit")) or names.user(_ref_id(a, "user"))
        if who:
            parts.append(who if lead_only else f"{ASSIGNMENT_ROLES[a.role]}: {who}")
    return "; ".join(parts)


def _transfer_date(doc: Document) -> dt.date | None:
    times = [a.assigned_at for a in _assignments(doc) if a.assigned_at]
    return _vn_date(min(times)) if times else None


def _dispatch_date(doc: Document) -> dt.date | None:
    """The day the document was dispatched: its first history entry about dispatching."""
    times = [h.at for h in doc.history if h.at and "dispatch" in (h.action or "")]
    return _vn_date(min(times)) if times else None


# Queries -----------------------------------------------------------------------------------


def _check_filter(kind: str, flt: RegisterFilter) -> None:
    if kind not in REGISTER_KINDS:
        raise ValidationFailed("Loại sổ không hợp lệ.")
    if flt.date_from and flt.date_to and flt.date_from > flt.date_to:
        raise ValidationFailed("Ngày bắt đầu phải trước hoặc bằng ngày kết thúc.")
    book = flt.book
    if book is None:
        return
    if kind in ("incoming", "tracking") and book.direction != "incoming":
        raise ValidationFailed(f"Sổ «{book}» không phải sổ văn bản đến.")
    if kind == "outgoing" and book.direction == "incoming":
        raise ValidationFailed(f"Sổ «{book}» là sổ văn bản đến, không in được sổ văn bản đi.")
    if book.secret and flt.max_secrecy < 1:
        raise Forbidden("Bạn không được xem sổ văn bản mật.")


# Never needed for a register, and heavy to load for thousands of rows.
_UNUSED_FIELDS = ("content", "legacy_raw", "revisions", "attachments", "comments", "circuit")


def _documents(kind: str, flt: RegisterFilter) -> list[Document]:
    book = flt.book
    query = Document.objects.exclude(*_UNUSED_FIELDS)
    if book is not None:
        query = query.filter(register_book=book, secrecy__lte=flt.max_secrecy)
    else:
        query = query.filter(secrecy=0)  # secret documents only appear in their own books
    unit_id = str(flt.unit.pk) if flt.unit else None
    if kind in ("incoming", "tracking"):
        query = query.exclude("history").filter(direction="incoming", arrival_number__ne=None)
        if flt.date_from:
            query = query.filter(arrival_at__gte=_vn_start(flt.date_from))
        if flt.date_to:
            query = query.filter(arrival_at__lt=_vn_start(flt.date_to + dt.timedelta(days=1)))
        if flt.unit is not None:
            query = query.filter(
                Q(assignments__unit=flt.unit) | Q(unit_ids=unit_id) | Q(owner_unit_id=unit_id)
            )
        # One book: its own sequence; several books: the order documents arrived in.
        order = ("registered_year", "arrival_number") if book else ("arrival_at", "arrival_number")
        return list(query.order_by(*order))
    direction = book.direction if book is not None else "outgoing"
    query = query.filter(direction=direction, number__ne=None)
    if flt.date_from:
        query = query.filter(issued_on__gte=flt.date_from)
    if flt.date_to:
        query = query.filter(issued_on__lte=flt.date_to)
    if flt.unit is not None:
        query = query.filter(
            Q(issuer_unit=flt.unit) | Q(unit_ids=unit_id) | Q(owner_unit_id=unit_id)
        )
    order = ("registered_year", "number") if book else ("issued_on", "number")
    return list(query.order_by(*order))


def _replies(docs: Iterable[Document]) -> dict[Any, list[str]]:
    """Map incoming document ids to the notations of the documents that answer them."""
    ids = [d.pk for d in docs]
    out: dict[Any, list[str]] = {}
    if not ids:
        return out
    answers = Document.objects(
        source_document__in=ids, direction__in=["outgoing", "internal"], notation__ne=None
    ).only("source_document", "notation")
    for answer in answers:
        out.setdefault(_ref_id(answer, "source_document"), []).append(answer.notation)
    return out


# Rows --------------------------------------------------------------------------------------


def _incoming_row(doc: Document, names: _Names) -> list[Cell]:
    return [
        _vn_date(doc.arrival_at),
        doc.arrival_number,
        doc.issuer or "",
        doc.notation or "",
        doc.issued_on,
        _type_and_subject(doc, names),
        _receivers(doc, names),
        _transfer_date(doc),
        "",
        _notes(doc),
    ]


def _outgoing_row(doc: Document, names: _Names) -> list[Cell]:
    signer = doc.display_signer or names.user(_ref_id(doc, "signer"))
    recipients = list(dict.fromkeys([*doc.recipients_to, *doc.recipients]))
    return [
        doc.notation or _text(doc.number),
        doc.issued_on,
        _type_and_subject(doc, names),
        signer,
        "; ".join(r.strip().lstrip("-").strip() for r in recipients if r.strip()),
        names.unit(_ref_id(doc, "issuer_unit")),
        doc.copies,
        _dispatch_date(doc),
        "",
        _notes(doc),
    ]


def _progress(doc: Document, now: dt.datetime) -> str:
    if doc.closed:
        return f"Đã giải quyết ngày {_text(_vn_date(doc.state_entered_at))}".strip()
    tasks = [a for a in _assignments(doc) if a.role != "info"]
    if not tasks:
        return "Chưa giao xử lý"
    done = sum(1 for a in tasks if a.status == "done")
    text = f"Đang giải quyết ({done}/{len(tasks)} phần việc đã xong)"
    due = doc.due_at
    if due is not None and (due if due.tzinfo else due.replace(tzinfo=dt.UTC)) < now:
        text += "; quá hạn"
    return text


def _deadline(doc: Document) -> dt.date | None:
    if doc.deadline_on:
        return doc.deadline_on
    times = [a.deadline_at for a in _assignments(doc) if a.role == "lead" and a.deadline_at]
    return _vn_date(min(times)) if times else None


def _tracking_row(
    doc: Document, names: _Names, replies: dict[Any, list[str]], now: dt.datetime
) -> list[Cell]:
    parts = [doc.notation or "", _text(doc.issued_on), doc.issuer or ""]
    head = ", ".join(p for p in parts if p)
    return [
        doc.arrival_number,
        f"{head}: {_type_and_subject(doc, names)}" if head else _type_and_subject(doc, names),
        _receivers(doc, names, lead_only=True) or _receivers(doc, names),
        _deadline(doc),
        _progress(doc, now),
        "; ".join(replies.get(doc.pk, [])),
        _notes(doc),
    ]


def _subtitles(kind: str, flt: RegisterFilter) -> list[str]:
    lines = []
    if flt.book is not None:
        lines.append(f"Sổ: {flt.book}")
    year = flt.book.year if flt.book is not None and flt.book.year else None
    if flt.date_from or flt.date_to:
        start = _text(flt.date_from) or "…"
        end = _text(flt.date_to) or "…"
        lines.append(f"Từ ngày {start} đến ngày {end}")
    elif year:
        lines.append(f"Năm {year}")
    if flt.unit is not None:
        lines.append(f"Đơn vị: {flt.unit.name}")
    return lines


def build_register(kind: str, flt: RegisterFilter | None = None) -> Register:
    """Collect the rows of register `kind` (incoming, outgoing, tracking)."""
    flt = flt or RegisterFilter()
    _check_filter(kind, flt)
    docs = _documents(kind, flt)
    names = _Names()
    title = REGISTER_KINDS[kind]
    if flt.book is not None and flt.book.direction == "internal":
        title = "Sổ đăng ký văn bản nội bộ"
    if flt.book is not None and flt.book.secret:
        title += " (mật)"
    register = Register(kind, title, _subtitles(kind, flt), COLUMNS[kind])
    if kind == "incoming":
        register.rows = [_incoming_row(d, names) for d in docs]
    elif kind == "outgoing":
        register.rows = [_outgoing_row(d, names) for d in docs]
    else:
        replies, now = _replies(docs), utcnow()
        register.rows = [_tracking_row(d, names, replies, now) for d in docs]
    return register


# PDF ---------------------------------------------------------------------------------------

PDF_FONT = "DejaVu"
PDF_BODY_SIZE = 7.5
PDF_LINE = 3.4  # mm per text line in the table
PDF_PAD = 1.0  # mm inside each cell


def _pdf_class() -> type:
    from fpdf import FPDF

    class RegisterPdf(FPDF):
        def footer(self) -> None:
            self.set_y(-10)
            self.set_font(PDF_FONT, "", 8)
            self.cell(0, 5, f"Trang {self.page_no()}/{{nb}}", align="C")

    return RegisterPdf


class _PdfTable:
    """A bordered table that wraps text itself and repeats its heading on every page.

    fpdf2's own table measures text character by character for every candidate line
    break, which took about 8 ms a row: a year's register of a few thousand documents
    took a minute. Caching character widths makes wrapping linear.
    """

    def __init__(self, pdf: Any, titles: list[str], weights: list[int]) -> None:
        self.pdf = pdf
        self.titles = titles
        usable = pdf.w - pdf.l_margin - pdf.r_margin
        self.widths = [usable * w / sum(weights) for w in weights]
        self._char_widths: dict[tuple[str, str], float] = {}

    def _width(self, style: str, ch: str) -> float:
        key = (style, ch)
        width = self._char_widths.get(key)
        if width is None:
            width = self._char_widths[key] = self.pdf.get_string_width(ch)
        return width

    def _wrap(self, text: str, width: float, style: str) -> list[str]:
        lines: list[str] = []
        space = self._width(style, " ")
        for paragraph in text.split("\n"):
            line, line_w = "", 0.0
            for word in paragraph.split():
                word_w = sum(self._width(style, c) for c in word)
                if line and line_w + space + word_w <= width:
                    line, line_w = f"{line} {word}", line_w + space + word_w
                    continue
                if line:
                    lines.append(line)
                line, line_w = "", 0.0
                for ch in word:  # a word wider than the cell is cut where it must be
                    ch_w = self._width(style, ch)
                    if line and line_w + ch_w > width:
                        lines.append(line)
                        line, line_w = "", 0.0
                    line, line_w = line + ch, line_w + ch_w
            lines.append(line)
        return lines or [""]

    def _draw(self, cells: list[str], widths: list[float], style: str, heading: bool) -> None:
        pdf = self.pdf
        pdf.set_font(PDF_FONT, style, PDF_BODY_SIZE)
        wrapped = [
            self._wrap(t, w - 2 * PDF_PAD, style) for t, w in zip(cells, widths, strict=True)
        ]
        room = pdf.page_break_trigger - pdf.t_margin - 2 * PDF_PAD
        max_lines = max(1, int(room / PDF_LINE) - 8)  # a row never outgrows a page
        wrapped = [w[:max_lines] for w in wrapped]
        height = max(len(w) for w in wrapped) * PDF_LINE + 2 * PDF_PAD
        if not heading and pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
            self.heading()
            pdf.set_font(PDF_FONT, style, PDF_BODY_SIZE)
        x, y = pdf.l_margin, pdf.get_y()
        for lines, width in zip(wrapped, widths, strict=True):
            if heading:
                pdf.set_fill_color(232, 236, 241)
            pdf.rect(x, y, width, height, style="DF" if heading else "D")
            for i, text in enumerate(lines):
                if text:
                    pdf.set_xy(x + PDF_PAD, y + PDF_PAD + i * PDF_LINE)
                    pdf.cell(width - 2 * PDF_PAD, PDF_LINE, text, align="C" if heading else "L")
            x += width
        pdf.set_xy(pdf.l_margin, y + height)

    def heading(self) -> None:
        self._draw(self.titles, self.widths, "B", heading=True)

    def row(self, cells: list[str]) -> None:
        self._draw(cells, self.widths, "", heading=False)

    def full_row(self, text: str) -> None:
        self._draw([text], [sum(self.widths)], "", heading=False)


def register_pdf(kind: str, flt: RegisterFilter | None = None) -> bytes:
    """Return register `kind` as a landscape A4 PDF with Vietnamese headings."""
    from fpdf.enums import XPos, YPos

    register = build_register(kind, flt)
    pdf = _pdf_class()(orientation="L", unit="mm", format="A4")
    for style, filename in FONT_FILES.items():
        pdf.add_font(PDF_FONT, style, f"{FONT_DIR}/{filename}")
    agency = Agency.current()
    pdf.set_title(register.title)
    pdf.set_creator("VănThư")
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.add_page()
    line = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}
    if agency is not None:
        pdf.set_font(PDF_FONT, "", 9)
        pdf.cell(110, 5, (agency.parent_name or "").upper(), align="C", **line)
        pdf.set_font(PDF_FONT, "B", 9)
        pdf.cell(110, 5, agency.name.upper(), align="C", **line)
    pdf.ln(4)
    pdf.set_font(PDF_FONT, "B", 15)
    pdf.cell(0, 8, register.title.upper(), align="C", **line)
    pdf.set_font(PDF_FONT, "", 10)
    for subtitle in register.subtitles:
        pdf.cell(0, 6, subtitle, align="C", **line)
    pdf.ln(3)
    table = _PdfTable(pdf, [c[0] for c in register.columns], [c[1] for c in register.columns])
    table.heading()
    for values in register.rows:
        table.row([_text(v) for v in values])
    if not register.rows:
        table.full_row("Không có văn bản nào.")
    pdf.ln(4)
    pdf.set_font(PDF_FONT, "", 8)
    pdf.cell(0, 5, f"Lập ngày {vn_today():%d/%m/%Y}; {len(register.rows)} văn bản.", **line)
    return bytes(pdf.output())


# XLSX --------------------------------------------------------------------------------------


def register_xlsx(kind: str, flt: RegisterFilter | None = None) -> bytes:
    """Return register `kind` as an XLSX workbook (one sheet, a heading row, one row each)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    register = build_register(kind, flt)
    wb = Workbook()
    ws = wb.active
    ws.title = {"incoming": "Sổ văn bản đến", "outgoing": "Sổ văn bản đi"}.get(
        kind, "Sổ theo dõi giải quyết"
    )
    ncols = len(register.columns)
    agency = Agency.current()
    ws.append([agency.name if agency else ""])
    ws.append([register.title.upper()])
    ws["A2"].font = Font(bold=True, size=14)
    for subtitle in register.subtitles:
        ws.append([subtitle])
    ws.append([])
    header_row = ws.max_row + 1
    ws.append([c[0] for c in register.columns])
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    wrap = Alignment(wrap_text=True, vertical="top")
    for col in range(1, ncols + 1):
        cell = ws.cell(row=header_row, column=col)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E8ECF1")
        cell.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
        cell.border = border
        ws.column_dimensions[get_column_letter(col)].width = register.columns[col - 1][2]
    for row_number, values in enumerate(register.rows, start=header_row + 1):
        ws.append(values)  # ws.max_row is a scan: counting rows here keeps this linear
        for col, value in enumerate(values, start=1):
            cell = ws.cell(row=row_number, column=col)
            cell.alignment = wrap
            cell.border = border
            if isinstance(value, dt.date):
                cell.number_format = "DD/MM/YYYY"
    for row in range(1, header_row - 1):
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
        ws.cell(row=row, column=1).alignment = Alignment(horizontal="center")
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def register_filename(kind: str, fmt: str, flt: RegisterFilter | None = None) -> str:
    """Return an ASCII file name for a downloaded register."""
    stem = {"incoming": "so-van-ban-den", "outgoing": "so-van-ban-di"}.get(
        kind, "so-theo-doi-giai-quyet"
    )
    if flt is not None and flt.book is not None and flt.book.year:
        stem += f"-{flt.book.year}"
    return f"{stem}-{vn_today():%Y%m%d}.{fmt}"
