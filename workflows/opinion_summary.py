"""The summary of an opinion request: a line per addressee, as text, PDF (A4) and Excel."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any

from models.audit import utcnow
from models.document import Document, HistoryEntry
from models.opinion import CLOSE_REASONS, OpinionRequest
from models.organization import Agency
from workflows import storage
from workflows.opinion import state_label, vn_time

logging.getLogger("fontTools").setLevel(logging.WARNING)  # fpdf2 subsetting chatter
FONT_DIR = "/usr/share/fonts/truetype/dejavu"


def summary_rows(req: OpinionRequest) -> list[dict[str, Any]]:
    """One line per unit or person asked: what they answered, who answered, when."""
    return [
        {
            "index": i,
            "name": t.name,
            "kind": "Đơn vị" if t.kind == "unit" else "Cá nhân",
            "answer": t.answer,
            "answer_label": t.answer_label,
            "by": t.answered_by_text,
            "at": vn_time(t.answered_at),
            "comment": t.comment or "",
            "file": t.file.filename if t.file else "",
            "revisions": t.revisions,
            "missed": t.missed or (req.closed and t.answer is None),
        }
        for i, t in enumerate(req.targets, 1)
    ]


def summary_text(req: OpinionRequest) -> str:
    """A one-line Vietnamese summary of the answers."""
    c = req.counts
    total = len(req.targets)
    missing = [t.name for t in req.targets if t.answer is None]
    text = (
        f"Tổng hợp ý kiến: {total - c['none']}/{total} nơi đã cho ý kiến "
        f"(Đồng ý {c['agree']}, Không đồng ý {c['disagree']}, Ý kiến khác {c['other']})"
    )
    return text + (f"; chưa cho ý kiến: {', '.join(missing)}." if missing else ".")


def _header_lines(req: OpinionRequest) -> list[str]:
    agency = Agency.current()
    lines = [
        f"Nội dung xin ý kiến: {req.subject}",
        f"Người gửi: {req.requester_name}",
        f"Hạn trả lời: {vn_time(req.deadline_at)}"
        + (f" (đã gia hạn {len(req.extensions)} lần)" if req.extensions else ""),
        f"Trạng thái: {state_label(req)}"
        + (
            f", {CLOSE_REASONS[req.close_reason].lower()} lúc {vn_time(req.closed_at)}"
            if req.closed and req.close_reason
            else ""
        ),
    ]
    if req.source_document is not None:
        lines.append(
            f"Văn bản gốc: {req.source_document.notation or req.source_document.subject[:120]}"
        )
    return ([agency.name] if agency else []) + lines


def summary_pdf(req: OpinionRequest) -> bytes:
    """The printable summary (A4 landscape, DejaVu, Vietnamese)."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_font("DejaVu", "", f"{FONT_DIR}/DejaVuSans.ttf")
    pdf.add_font("DejaVu", "B", f"{FONT_DIR}/DejaVuSans-Bold.ttf")
    pdf.set_title(f"Tổng hợp ý kiến - {req.subject[:80]}")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 9, "BẢNG TỔNG HỢP Ý KIẾN", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    for line in _header_lines(req):
        pdf.multi_cell(0, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 9)
    head = ("STT", "Đơn vị / cá nhân", "Ý kiến", "Người cho ý kiến", "Thời điểm", "Nội dung ý kiến")
    with pdf.table(col_widths=(9, 42, 42, 52, 24, 81), text_align="LEFT", line_height=5) as table:
        row = table.row()
        for text in head:
            row.cell(text)
        for r in summary_rows(req):
            row = table.row()
            comment = r["comment"] + (f" [Tệp: {r['file']}]" if r["file"] else "")
            for text in (str(r["index"]), r["name"], r["answer_label"], r["by"], r["at"], comment):
                row.cell(text)
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(0, 5.5, summary_text(req), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.multi_cell(0, 5.5, f"Lập lúc {vn_time(utcnow())}.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def summary_xlsx(req: OpinionRequest) -> bytes:
    """The summary as a spreadsheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Tổng hợp ý kiến"
    ws.append(["BẢNG TỔNG HỢP Ý KIẾN"])
    ws["A1"].font = Font(bold=True, size=14)
    for line in _header_lines(req):
        ws.append([line])
    ws.append([])
    head = [
        "STT",
        "Đơn vị / cá nhân",
        "Loại",
        "Ý kiến",
        "Người cho ý kiến",
        "Thời điểm",
        "Nội dung ý kiến",
        "Tệp kèm theo",
        "Số lần sửa",
    ]
    ws.append(head)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for r in summary_rows(req):
        ws.append(
            [
                r["index"],
                r["name"],
                r["kind"],
                r["answer_label"],
                r["by"],
                r["at"],
                r["comment"],
                r["file"],
                max(0, r["revisions"] - 1),
            ]
        )
        ws.cell(ws.max_row, 7).alignment = Alignment(wrap_text=True, vertical="top")
    ws.append([])
    ws.append([summary_text(req)])
    for col, width in zip("ABCDEFGHI", (6, 36, 10, 22, 34, 18, 60, 24, 10), strict=True):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def attach_summary(req: OpinionRequest, now: dt.datetime | None = None) -> None:
    """Append the summary to the source draft's history, with the PDF when storage exists."""
    doc = req.source_document
    if doc is None:
        return
    now = now or utcnow()
    stored = None
    if req.summary_file is None:
        stored = storage.store_upload(
            io.BytesIO(summary_pdf(req)),
            f"tong-hop-y-kien-{req.pk}.pdf",
            uploaded_by=str(req.requester.pk),
        )
        OpinionRequest.objects(pk=req.pk).update_one(set__summary_file=stored)
        req.summary_file = stored
    entry = HistoryEntry(
        at=now,
        actor_name="Hệ thống",
        action="opinion_summary",
        label=summary_text(req),
        detail={
            "opinion_request": str(req.pk),
            "counts": req.counts,
            "summary_file": stored.filename if stored else None,
        },
    )
    update: dict[str, Any] = {"push__history": entry, "inc__version": 1, "set__updated_at": now}
    if stored is not None:
        update["push__attachments"] = stored
    Document.objects(pk=doc.pk).update_one(**update)
