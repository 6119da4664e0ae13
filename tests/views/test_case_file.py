"""Case file screens and API: permissions, the whole flow in the portal, bad input."""

import io
import xml.etree.ElementTree as ET

from pypdf import PdfReader

from models.audit import AuditEntry
from models.case_file import CaseFile, CaseFileList
from tests.conftest import api_token, csrf_token, web_login
from tests.fixtures.files.samples import pdf_bytes
from tests.workflows.test_case_file import (
    add_pdf,
    finished_incoming,
    migrated_document,
    open_adhoc,
)
from workflows import case_file as cf


def _post(client, url, page_url, data=None):
    token = csrf_token(client.get(page_url).text)
    return client.post(url, data={"csrf_token": token, **(data or {})}, follow_redirects=True)


def test_archive_screens_need_the_archive_permissions(client):
    web_login(client, "chuyenvien")
    assert client.get("/case-files/").status_code == 200
    assert client.get("/case-file-lists/").status_code == 200
    for url in ("/archive/", "/archive/due", "/archive/destruction", "/archive/access-log"):
        assert client.get(url).status_code == 403, url
    assert client.get("/retention/").status_code == 403
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.get("/").text)})
    web_login(client, "luutru")
    for url in ("/archive/", "/archive/due", "/archive/destruction", "/archive/access-log"):
        assert client.get(url).status_code == 200, url
    page = client.get("/retention/")
    assert page.status_code == 200 and "Kế hoạch, báo cáo công tác năm" in page.text


def test_specialist_and_records_manager_in_the_portal(client, app, make_document, users, units):
    incoming = add_pdf(finished_incoming(make_document, users), pdf_bytes("Công văn số 12"))
    migrated = migrated_document(units)
    web_login(client, "chuyenvien")
    page = _post(
        client,
        "/case-files/new",
        "/case-files/new",
        {"code": "15.QLTM", "title": "Hồ sơ kiểm tra thị trường Tết", "retention": "07.02"},
    )
    assert "Đã lập hồ sơ 15.QLTM." in page.text
    case_file = CaseFile.objects.get(code="15.QLTM")
    url = f"/case-files/{case_file.pk}"
    found = client.get(url, query_string={"q": "488397"})
    assert "35/BC-BCT" in found.text  # found by its legacy id
    for doc in (incoming, migrated):
        page = _post(client, f"{url}/attach", url, {"document_id": str(doc.pk)})
        assert "Đã đưa văn bản vào hồ sơ." in page.text
    doc_page = client.get(f"/documents/{incoming.pk}")
    assert 'id="holding-case-files"' in doc_page.text and "15.QLTM" in doc_page.text
    page = _post(client, f"{url}/close", url)
    assert "Đã kết thúc hồ sơ." in page.text
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.get("/").text)})

    web_login(client, "luutru")
    due = client.get("/archive/due")
    assert 'data-code="15.QLTM"' in due.text
    page = _post(client, "/archive/transfer", "/archive/due", {"case_file": str(case_file.pk)})
    assert "Đã tiếp nhận nộp lưu" in page.text
    assert CaseFile.objects.get(pk=case_file.pk).state == "archived"
    page = _post(client, "/archive/transfer", "/archive/due", {"case_file": str(case_file.pk)})
    assert "đã được nộp lưu ngày" in page.text  # transferring twice is refused
    detail = client.get(url)
    assert 'id="frozen-notice"' in detail.text and "close-case-file" not in detail.text
    pdf = client.get(f"{url}/export.pdf")
    assert pdf.mimetype == "application/pdf" and len(PdfReader(io.BytesIO(pdf.data)).pages) >= 2
    xml = client.get(f"{url}/export.xml")
    assert ET.fromstring(xml.data).findtext("FileNotation") == "15.QLTM"
    download = client.get(f"{url}/documents/{incoming.pk}/file")
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert client.get(f"{url}/documents/{migrated.pk}/file").status_code == 404  # no PDF
    log_page = client.get("/archive/access-log")
    for label in ("Xem hồ sơ", "Xuất hồ sơ PDF", "Xuất siêu dữ liệu XML", "Tải văn bản"):
        assert label in log_page.text
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.get("/").text)})

    web_login(client, "chuyenvien")
    detail = client.get(url)
    assert 'id="frozen-notice"' in detail.text and "document-search" not in detail.text
    page = _post(client, f"{url}/detach/{incoming.pk}", url)
    assert "chỉ được xem, không sửa được" in page.text
    assert len(CaseFile.objects.get(pk=case_file.pk).items) == 2
    viewers = {e.actor_name for e in AuditEntry.objects(action="case_file.view")}
    assert viewers == {users["luutru"].full_name, users["chuyenvien"].full_name}


def test_add_to_a_case_file_from_the_document_page(client, make_document, users, units):
    incoming = finished_incoming(make_document, users)
    case_file = open_adhoc(users["chuyenvien"])
    web_login(client, "chuyenvien")
    doc_url = f"/documents/{incoming.pk}"
    assert 'id="add-to-case-file"' in client.get(doc_url).text
    page = _post(
        client,
        "/case-files/add-document",
        doc_url,
        {"case_file": str(case_file.pk), "document_id": str(incoming.pk)},
    )
    assert "Đã đưa văn bản vào hồ sơ 15.QLTM." in page.text
    assert CaseFile.objects.get(pk=case_file.pk).holds(incoming.pk)


def test_close_problems_are_shown_and_nothing_changes(client, make_document, users):
    draft = make_document("outgoing", "chuyenvien", notation="20/SCT-QLTM")
    case_file = open_adhoc(users["chuyenvien"])
    cf.attach_document(users["chuyenvien"], case_file.pk, draft.pk)
    web_login(client, "chuyenvien")
    url = f"/case-files/{case_file.pk}"
    assert "Hồ sơ còn dự thảo: «20/SCT-QLTM»" in client.get(url).text
    page = _post(client, f"{url}/close", url)
    assert "Chưa đóng được hồ sơ." in page.text
    assert CaseFile.objects.get(pk=case_file.pk).state == "open"


def test_records_manager_drafts_and_submits_a_list(client, users):
    web_login(client, "luutru")
    page = _post(client, "/case-file-lists/new", "/case-file-lists/", {"year": "2031"})
    year_list = CaseFileList.objects.get(year=2031)
    url = f"/case-file-lists/{year_list.pk}"
    page = _post(
        client,
        f"{url}/entries",
        url,
        {
            "code": "01.VP",
            "title": "Hồ sơ hội nghị cán bộ, công chức",
            "retention": "01.02",
            "owner_unit": str(users["vanthu"].unit.pk),
        },
    )
    assert "Đã thêm hồ sơ vào danh mục." in page.text and "Vĩnh viễn" in page.text
    page = _post(client, f"{url}/submit", url, {"leader": str(users["giamdoc"].pk)})
    assert "Đã trình lãnh đạo duyệt danh mục hồ sơ." in page.text
    year_list.reload()
    assert year_list.state == "submitted"
    doc_page = client.get(f"/documents/{year_list.approval_document.pk}")
    assert "Danh mục hồ sơ năm 2031" in doc_page.text


# API ----------------------------------------------------------------------------------------


def _auth(client, username):
    return {"Authorization": f"Bearer {api_token(client, username)}"}


def test_api_lists_and_shows_what_the_user_may_see(client, make_document, users, units):
    incoming = finished_incoming(make_document, users)
    case_file = open_adhoc(users["chuyenvien"])
    cf.attach_document(users["chuyenvien"], case_file.pk, incoming.pk)
    mine = _auth(client, "chuyenvien")
    body = client.get("/api/v1/case-files", headers=mine).get_json()
    assert body["total"] == 1 and body["items"][0]["code"] == "15.QLTM"
    assert body["items"][0]["retention"] == "15 năm"
    other = _auth(client, "cv.khtc")
    assert client.get("/api/v1/case-files", headers=other).get_json()["total"] == 0
    missing = client.get(f"/api/v1/case-files/{case_file.pk}", headers=other)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    detail = client.get(f"/api/v1/case-files/{case_file.pk}", headers=mine).get_json()
    assert detail["items"][0]["document"]["notation"] == "12/UBND-KT"
    assert detail["items"][0]["readable"] is True
    bad = client.get("/api/v1/case-files?state=lost", headers=mine)
    assert bad.status_code == 400
    assert client.get("/api/v1/case-files").status_code == 401


def test_api_attach_with_the_same_checks(client, make_document, users, units):
    case_file = open_adhoc(users["chuyenvien"])
    hidden = make_document("outgoing", "cv.khtc")
    migrated = migrated_document(units)
    mine = _auth(client, "chuyenvien")
    url = f"/api/v1/case-files/{case_file.pk}/documents"
    response = client.post(url, json={"document_id": str(migrated.pk)}, headers=mine)
    assert response.status_code == 201
    assert [i["document"]["legacy_id"] for i in response.get_json()["items"]] == ["488397-VBĐT"]
    response = client.post(url, json={"document_id": str(hidden.pk)}, headers=mine)
    assert response.status_code == 404
    assert "không có quyền xem" in response.get_json()["error"]["message"]
    assert client.post(url, json={}, headers=mine).status_code == 400
    response = client.post(url, json={"document_id": str(migrated.pk)}, headers=mine)
    assert response.status_code == 409
    cf.close_case_file(users["chuyenvien"], case_file.pk)
    cf.transfer_case_files(users["luutru"], [case_file.pk])
    other = migrated_document(units, legacy_id="2-VBĐT", notation="36/BC-BCT")
    response = client.post(url, json={"document_id": str(other.pk)}, headers=mine)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "case_file_frozen"
    assert len(CaseFile.objects.get(pk=case_file.pk).items) == 1


def test_bad_filters_are_refused_clearly(client):
    headers = _auth(client, "luutru")
    response = client.get("/api/v1/case-files?unit=abc", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "Đơn vị không hợp lệ."
    web_login(client, "luutru")
    page = client.get("/archive/?list=xyz")
    assert page.status_code == 200 and "Danh mục hồ sơ không hợp lệ." in page.text


def test_openapi_describes_the_case_file_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/case-files", "/case-files/{id}", "/case-files/{id}/documents"):
        assert path in spec["paths"]
    assert "CaseFile" in spec["components"]["schemas"]
