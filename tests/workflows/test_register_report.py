import datetime as dt
import io
import subprocess

import pytest
from openpyxl import load_workbook

from models.document import Assignment, Document
from models.document_type import DocumentType
from models.organization import Unit
from models.register_book import RegisterBook
from workflows.errors import Forbidden, ValidationFailed
from workflows.register_book import assign_arrival_number, assign_number
from workflows.register_report import (
    RegisterFilter,
    build_register,
    register_pdf,
    register_xlsx,
)


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "register.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True)
    return " ".join(out.stdout.split())  # cells wrap: compare words, not lines


def unit(abbr):
    return Unit.objects.get(abbreviation=abbr)


def incoming(notation, arrived, lead="QLTM", **kw):
    doc = Document(
        direction="incoming",
        subject=kw.pop("subject", "Về việc kiểm tra an toàn thực phẩm dịp Tết"),
        doc_type=DocumentType.objects.get(abbreviation="KH"),
        doc_type_name="Kế hoạch",
        notation=notation,
        issuer="UBND tỉnh Đồng Nai",
        issued_on=arrived.date() - dt.timedelta(days=2),
        arrival_at=arrived,
        **kw,
    )
    assign_arrival_number(doc)
    doc.assignments = [
        Assignment(
            role="lead",
            unit=unit(lead),
            assigned_at=arrived + dt.timedelta(hours=3),
            deadline_at=dt.datetime(2026, 2, 20, tzinfo=dt.UTC),
        ),
        Assignment(role="coordinate", unit=unit("KHTC")),
    ]
    return doc.save()


@pytest.fixture
def register_data():
    a = incoming("15/KH-UBND", dt.datetime(2026, 1, 5, 2, tzinfo=dt.UTC))
    b = incoming("27/KH-UBND", dt.datetime(2026, 1, 20, 2, tzinfo=dt.UTC), lead="QLCN")
    secret = incoming("03/KH-UBND", dt.datetime(2026, 1, 6, 2, tzinfo=dt.UTC), secrecy=1)
    reply = Document(
        direction="outgoing",
        subject="Báo cáo kết quả kiểm tra an toàn thực phẩm",
        doc_type=DocumentType.objects.get(abbreviation="BC"),
        doc_type_name="Báo cáo",
        issuer_unit=unit("QLTM"),
        signer_authority="KT.",
        signer_title="Phó Giám đốc",
        signer_name="Trần Thị Bình",
        recipients=["- UBND tỉnh;", "- Lưu: VT, QLTM."],
        copies=4,
        source_document=a,
        issued_on=dt.date(2026, 1, 25),
    )
    assign_number(reply)
    reply.save()
    return {"a": a, "b": b, "secret": secret, "reply": reply}


def test_incoming_register_pdf_has_vietnamese_headers_and_rows(register_data, tmp_path):
    text = pdf_text(register_pdf("incoming"), tmp_path)
    for heading in (
        "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN",
        "SỞ CÔNG THƯƠNG TỈNH ĐỒNG NAI",
        "Số đến",
        "Tác giả",
        "Tên loại và trích yếu nội dung",
        "Đơn vị hoặc người nhận",
        "Ký nhận",
        "Ghi chú",
    ):
        assert heading in text, heading
    assert "15/KH-UBND" in text and "27/KH-UBND" in text
    assert "03/KH-UBND" not in text  # secret documents only in their own register
    assert "Chủ trì: Phòng Quản lý" in text and "Phối hợp: Phòng" in text
    assert "Trang 1/1" in text


def test_outgoing_register_pdf_lists_the_notation_and_signer(register_data, tmp_path):
    text = pdf_text(register_pdf("outgoing"), tmp_path)
    assert "SỔ ĐĂNG KÝ VĂN BẢN ĐI" in text and "Người ký" in text and "Nơi nhận văn bản" in text
    assert register_data["reply"].notation == "01/BC-SCT"
    assert "01/BC-SCT" in text and "Trần Thị Bình" in text


def test_incoming_register_xlsx_rows(register_data):
    wb = load_workbook(io.BytesIO(register_xlsx("incoming")))
    ws = wb.active
    rows = [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
    header = rows.index(next(r for r in rows if r[0] == "Ngày đến"))
    assert rows[1][0] == "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN"
    assert list(rows[header])[:4] == ["Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu"]
    data = rows[header + 1 :]
    assert [(r[1], r[3]) for r in data] == [(1, "15/KH-UBND"), (2, "27/KH-UBND")]
    assert data[0][0].date() == dt.date(2026, 1, 5)
    assert data[0][5] == "Kế hoạch: Về việc kiểm tra an toàn thực phẩm dịp Tết"
    assert data[0][7].date() == dt.date(2026, 1, 5)  # transfer date


def test_tracking_register_shows_deadline_progress_and_reply(register_data):
    register = build_register("tracking")
    first = register.rows[0]
    assert first[0] == 1 and first[2] == "Phòng Quản lý Thương mại"
    assert first[3] == dt.date(2026, 2, 20)
    assert first[4].startswith("Đang giải quyết (0/2")
    assert first[5] == "01/BC-SCT"
    wb = load_workbook(io.BytesIO(register_xlsx("tracking")))
    values = [c for row in wb.active.iter_rows(values_only=True) for c in row]
    assert "Số, ký hiệu văn bản trả lời" in values and "01/BC-SCT" in values


def test_filters_by_date_range_and_unit(register_data):
    january_first_half = RegisterFilter(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 1, 5))
    assert [r[3] for r in build_register("incoming", january_first_half).rows] == ["15/KH-UBND"]
    by_unit = RegisterFilter(unit=unit("QLCN"))
    assert [r[3] for r in build_register("incoming", by_unit).rows] == ["27/KH-UBND"]
    out = RegisterFilter(unit=unit("QLTM"), date_from=dt.date(2026, 1, 25))
    assert [r[0] for r in build_register("outgoing", out).rows] == ["01/BC-SCT"]
    assert build_register("outgoing", RegisterFilter(unit=unit("QLCN"))).rows == []


def test_date_range_follows_vietnam_days(register_data):
    # 20 January 02:00 UTC is 09:00 in Vietnam; 19 January 18:00 UTC is already the 20th.
    incoming("31/KH-UBND", dt.datetime(2026, 1, 19, 18, tzinfo=dt.UTC))
    day = RegisterFilter(date_from=dt.date(2026, 1, 20), date_to=dt.date(2026, 1, 20))
    rows = build_register("incoming", day).rows
    assert [r[3] for r in rows] == ["31/KH-UBND", "27/KH-UBND"]  # in order of arrival
    assert rows[0][0] == dt.date(2026, 1, 20) == rows[1][0]
    # One book lists its own sequence: by arrival number.
    book = RegisterBook.objects.get(name="Sổ văn bản đến")
    rows = build_register("incoming", RegisterFilter(book=book)).rows
    assert [(r[1], r[3]) for r in rows] == [(1, "15/KH-UBND"), (2, "27/KH-UBND"), (3, "31/KH-UBND")]


def test_secret_register_needs_clearance(register_data, tmp_path):
    book = RegisterBook.objects.get(name="Sổ văn bản đến Mật")
    with pytest.raises(Forbidden, match="sổ văn bản mật"):
        build_register("incoming", RegisterFilter(book=book))
    text = pdf_text(register_pdf("incoming", RegisterFilter(book=book, max_secrecy=1)), tmp_path)
    assert "03/KH-UBND" in text and "15/KH-UBND" not in text
    assert "(MẬT)" in text


def test_wrong_combinations_are_refused_in_vietnamese():
    outgoing_book = RegisterBook.objects.get(name="Sổ văn bản đi")
    with pytest.raises(ValidationFailed, match="không phải sổ văn bản đến"):
        build_register("incoming", RegisterFilter(book=outgoing_book))
    with pytest.raises(ValidationFailed, match="phải trước hoặc bằng"):
        build_register(
            "outgoing", RegisterFilter(date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 1, 1))
        )


def test_an_empty_register_still_prints(tmp_path):
    text = pdf_text(register_pdf("outgoing"), tmp_path)
    assert "Không có văn bản nào." in text


def test_long_registers_repeat_the_heading_on_every_page(tmp_path):
    for i in range(40):
        incoming(
            f"{i + 100}/KH-UBND",
            dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC),
            subject="Về việc triển khai kế hoạch phát triển công nghiệp hỗ trợ " * 3,
        )
    path = tmp_path / "long.pdf"
    path.write_bytes(register_pdf("incoming"))
    pages = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout.split("\f")[:-1]
    assert len(pages) >= 3
    assert all("Ngày đến" in page and "Số đến" in page for page in pages)
    text = " ".join(" ".join(pages).split())
    assert all(f"{i + 100}/KH-UBND" in text for i in range(40))
