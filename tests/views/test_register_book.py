import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from models.audit import AuditEntry
from models.document import Document
from models.document_type import DocumentType
from models.register_book import RegisterBook
from tests.conftest import csrf_token, web_login
from workflows.register_book import assign_arrival_number


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("chuyenvien", "/register-report/", 403),
        ("chuyenvien", "/register_book/", 403),
        ("giamdoc", "/register_book/", 403),
        ("vanthu", "/register-report/", 200),
        ("vanthu", "/register_book/", 200),
        ("admin", "/register_book/", 200),
    ],
)
def test_register_screens_check_the_permission(client, username, url, status):
    web_login(client, username)
    assert client.get(url).status_code == status


def test_anonymous_is_sent_to_login(client):
    response = client.get("/register-report/")
    assert response.status_code == 302 and "/auth/login" in response.location


def test_menu_shows_the_van_thu_category_only_to_the_clerk(client):
    page = web_login(client, "vanthu")
    assert "Văn thư" in page.text and "/register-report/" in page.text
    client.post("/auth/logout", data={"csrf_token": csrf_token(page.text)})
    page = web_login(client, "chuyenvien")
    assert "/register-report/" not in page.text


def register_incoming():
    doc = Document(
        direction="incoming",
        subject="Về việc báo cáo tình hình sản xuất",
        notation="88/UBND-KT",
        issuer="UBND tỉnh Đồng Nai",
        issued_on=dt.date(2026, 1, 2),
    )
    assign_arrival_number(doc)
    return doc.save()


def post_report(client, **fields):
    page = client.get("/register-report/")
    data = {
        "kind": "incoming",
        "book": "",
        "date_from": "",
        "date_to": "",
        "unit": "",
        "csrf_token": csrf_token(page.text),
    }
    data.update(fields)
    return client.post("/register-report/", data=data)


def test_clerk_downloads_the_register_as_pdf_and_xlsx(client):
    register_incoming()
    web_login(client, "vanthu")
    response = post_report(client, pdf="Tải bản PDF")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    assert "attachment" in response.headers["Content-Disposition"]
    response = post_report(client, kind="outgoing", xlsx="Tải bản Excel (XLSX)")
    assert response.status_code == 200 and response.data.startswith(b"PK")
    response = post_report(client, xlsx="x")
    ws = load_workbook(io.BytesIO(response.data)).active
    assert "88/UBND-KT" in [c for row in ws.iter_rows(values_only=True) for c in row]
    assert AuditEntry.objects(action="register.exported").count() == 3


def test_bad_dates_get_a_vietnamese_message(client):
    web_login(client, "vanthu")
    response = post_report(client, date_from="31/02/2026", pdf="x")
    assert response.status_code == 400
    assert "Ngày không hợp lệ: «31/02/2026»" in response.text
    response = post_report(client, date_from="10/02/2026", date_to="2026-02-01", pdf="x")
    assert response.status_code == 400 and "phải sau hoặc bằng" in response.text
    response = post_report(client, date_from="01/02/2026", date_to="2026-02-10", pdf="x")
    assert response.status_code == 200


def test_wrong_book_for_the_register_is_explained(client):
    web_login(client, "vanthu")
    book = RegisterBook.objects.get(name="Sổ văn bản đi")
    response = post_report(client, book=str(book.pk), pdf="x")
    assert response.status_code == 400 and "không phải sổ văn bản đến" in response.text


def test_secret_books_need_clearance(client):
    secret = RegisterBook.objects.get(name="Sổ văn bản đến Mật")
    web_login(client, "admin")  # register.manage but no clearance
    page = client.get("/register-report/")
    assert str(secret.pk) not in page.text
    response = post_report(client, book=str(secret.pk), pdf="x")
    assert response.status_code == 400 and "bạn không được xem" in response.text
    client.post("/auth/logout", data={"csrf_token": csrf_token(page.text)})
    web_login(client, "vanthu")  # cleared for Mật
    response = post_report(client, book=str(secret.pk), pdf="x")
    assert response.status_code == 200


def test_download_without_csrf_is_refused(client):
    web_login(client, "vanthu")
    response = client.post("/register-report/", data={"kind": "incoming", "pdf": "x"})
    assert response.status_code == 400 and not response.data.startswith(b"%PDF")


def book_form(client):
    page = client.get("/register_book/new/")
    assert page.status_code == 200
    return csrf_token(page.text)


def test_admin_creates_a_book_and_bad_templates_are_explained(client):
    web_login(client, "vanthu")
    data = {
        "name": "Sổ quyết định 2027",
        "direction": "outgoing",
        "year": "2027",
        "number_format": "{number}/{loai}-{agency_abbr}",
        "letter_number_format": "{number:02d}/{agency_abbr}-{unit_abbr}",
        "active": "y",
        "csrf_token": book_form(client),
    }
    response = client.post("/register_book/new/", data=data, follow_redirects=True)
    assert "trường không được hỗ trợ: {loai}" in response.text
    assert not RegisterBook.objects(name="Sổ quyết định 2027").first()
    data["number_format"] = "{number}/QĐ-{agency_abbr}"
    response = client.post("/register_book/new/", data=data, follow_redirects=True)
    assert response.status_code == 200
    book = RegisterBook.objects.get(name="Sổ quyết định 2027")
    assert book.number_format == "{number:02d}/QĐ-{agency_abbr}"
    assert AuditEntry.objects(object_type="RegisterBook", object_id=str(book.pk)).first()
    assert not book.doc_types and not book.units  # nothing chosen: every type and unit
    listing = client.get("/register_book/")
    assert "Sổ quyết định 2027" in listing.text and "Chưa cấp" in listing.text
    edit = client.get(f"/register_book/edit/?id={book.pk}")
    assert edit.status_code == 200 and "Mẫu số, ký hiệu công văn" in edit.text
    qd = DocumentType.objects.get(abbreviation="QĐ")
    data.update(csrf_token=csrf_token(edit.text), doc_types=[str(qd.pk)])
    client.post(f"/register_book/edit/?id={book.pk}", data=data, follow_redirects=True)
    book.reload()
    assert [t.abbreviation for t in book.doc_types] == ["QĐ"]


def test_a_used_book_cannot_be_deleted(client):
    doc = register_incoming()
    book = doc.register_book
    web_login(client, "vanthu")
    page = client.get("/register_book/")
    token = csrf_token(page.text) if 'name="csrf_token"' in page.text else None
    data = {"id": str(book.pk), "url": "/register_book/"}
    if token:
        data["csrf_token"] = token
    response = client.post("/register_book/delete/", data=data, follow_redirects=True)
    assert RegisterBook.objects(pk=book.pk).first() is not None
    assert re.search(r"không xóa được", response.text)


def test_clerk_reserves_a_number_from_the_register_screen(client):
    from models.register_book import NumberReservation, RegisterBook
    from tests.conftest import csrf_token, web_login

    web_login(client, "vanthu")
    page = client.get("/register-report/")
    book = RegisterBook.objects(direction="outgoing", secret=False).first()
    done = client.post(
        "/register-report/reserve",
        data={
            "book": str(book.pk),
            "reason": "Công văn khẩn của Giám đốc",
            "csrf_token": csrf_token(page.text),
        },
        follow_redirects=True,
    )
    assert "Đã giữ số 01" in done.text
    assert "Công văn khẩn của Giám đốc" in done.text
    assert NumberReservation.objects(book=book, number=1, status="reserved").count() == 1
    missing = client.post(
        "/register-report/reserve",
        data={"book": str(book.pk), "reason": "", "csrf_token": csrf_token(page.text)},
        follow_redirects=True,
    )
    assert NumberReservation.objects(book=book).count() == 1
    assert "alert" in missing.text
