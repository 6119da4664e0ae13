import io

import pytest

from models.document import Document
from models.document_type import DocumentType
from tests.conftest import api_token, csrf_token, web_login
from tests.fixtures.files.samples import exe_bytes, pdf_bytes


def register_form(client, **extra):
    page = client.get("/documents/new/incoming")
    data = {
        "csrf_token": csrf_token(page.text),
        "doc_type": str(DocumentType.objects.get(name="Công văn").pk),
        "notation": "88/SYT-NVY",
        "issuer": "Sở Y tế tỉnh Đồng Nai",
        "issued_on": "2026-11-17",
        "subject": "V/v phối hợp kiểm tra hàng hóa",
        "urgency": "0",
        "secrecy": "0",
        "main_file": (io.BytesIO(pdf_bytes()), "cong-van.pdf"),
    }
    data.update(extra)
    return client.post(
        "/documents/new/incoming",
        data=data,
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_clerk_registers_through_the_screen_and_sees_the_page(client):
    web_login(client, "vanthu")
    page = register_form(client)
    assert "Đã vào sổ văn bản đến, số đến 1." in page.text
    doc = Document.objects.get()
    assert f"/documents/{doc.pk}/file" in page.text
    pdf = client.get(f"/documents/{doc.pk}/file?rev=1&inline=1")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"].startswith("inline")
    listing = client.get("/documents/?tab=incoming")
    assert "V/v phối hợp kiểm tra hàng hóa" in listing.text


def test_fake_pdf_and_missing_fields_get_vietnamese_messages(client):
    web_login(client, "vanthu")
    page = register_form(client, main_file=(io.BytesIO(exe_bytes()), "cong-van.pdf"))
    assert "không phải PDF" in page.text
    page = register_form(client, subject="", issuer="")
    assert "Vui lòng nhập trích yếu văn bản." in page.text
    assert "Vui lòng nhập cơ quan ban hành." in page.text
    assert Document.objects.count() == 0


def test_duplicate_warning_then_confirmation(client):
    web_login(client, "vanthu")
    register_form(client)
    warned = register_form(client)
    assert "có thể đã được vào sổ" in warned.text and 'name="confirm_duplicate"' in warned.text
    assert Document.objects.count() == 1
    register_form(client, confirm_duplicate="1")
    assert Document.objects.count() == 2


@pytest.mark.parametrize(
    ("username", "status"),
    [("vanthu", 200), ("giamdoc", 200), ("luutru", 200), ("chuyenvien", 404), ("cv.khtc", 404)],
)
def test_a_guessed_url_never_shows_the_document(client, make_document, username, status):
    doc = make_document("incoming", "vanthu", issuer="UBND tỉnh")
    web_login(client, username)
    assert client.get(f"/documents/{doc.pk}").status_code == status
    assert client.get(f"/documents/{doc.pk}/file").status_code in (status, 404)


def test_specialist_cannot_open_the_registration_screen(client):
    web_login(client, "chuyenvien")
    assert client.get("/documents/new/incoming").status_code == 403
    assert client.get("/documents/new/outgoing").status_code == 200


def test_inbox_shows_what_waits_for_me_with_badges(client, make_document, users):
    from workflows import engine

    doc = make_document("incoming", "vanthu", issuer="UBND tỉnh", subject="Văn bản chờ phân công")
    engine.transition(doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)})
    Document.objects(pk=doc.pk).update(set__due_at=Document.objects.get(pk=doc.pk).created_at)
    web_login(client, "giamdoc")
    inbox = client.get("/documents/?tab=inbox")
    assert "Văn bản chờ phân công" in inbox.text and "Quá hạn" in inbox.text
    home = client.get("/")
    assert 'id="stat-overdue">1<' in home.text


def test_transition_from_the_page_and_stale_version(client, make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    page = web_login(client, "chuyenvien")
    page = client.get(f"/documents/{doc.pk}")
    token = csrf_token(page.text)
    ok = client.post(
        f"/documents/{doc.pk}/action/submit",
        data={"csrf_token": token, "version": doc.version},
        follow_redirects=True,
    )
    assert "Đã thực hiện." in ok.text
    stale = client.post(
        f"/documents/{doc.pk}/action/cancel",
        data={"csrf_token": token, "version": doc.version, "reason": "x"},
        follow_redirects=True,
    )
    assert "người khác thay đổi" in stale.text


def test_api_lists_reads_creates_and_acts(client, users, make_document):
    token = api_token(client, "vanthu")
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/documents",
        headers=auth,
        data={
            "direction": "incoming",
            "doc_type": str(DocumentType.objects.get(name="Công văn").pk),
            "issuer": "Bộ Công Thương",
            "subject": "V/v hướng dẫn kiểm tra",
            "notation": "9/BCT-TTTN",
            "file": (io.BytesIO(pdf_bytes()), "bct.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert created.status_code == 201, created.json
    doc_id = created.json["id"]
    assert created.json["arrival_number"] == 1
    listing = client.get("/api/v1/documents?direction=incoming&number=9/BCT", headers=auth).json
    assert listing["total"] == 1 and listing["items"][0]["id"] == doc_id
    actions = client.get(f"/api/v1/documents/{doc_id}/actions", headers=auth).json
    assert [a["code"] for a in actions["actions"]] == ["present", "return_invalid"]
    missing = client.post(f"/api/v1/documents/{doc_id}/actions/present", headers=auth, json={})
    assert missing.status_code == 400 and "Lãnh đạo" in missing.json["error"]["message"]
    done = client.post(
        f"/api/v1/documents/{doc_id}/actions/present",
        headers=auth,
        json={"leader": str(users["giamdoc"].pk)},
    )
    assert done.json["state"] == "presented"
    file = client.get(f"/api/v1/documents/{doc_id}/file", headers=auth)
    assert file.data.startswith(b"%PDF")
    other = {"Authorization": f"Bearer {api_token(client, 'cv.khtc')}"}
    assert client.get(f"/api/v1/documents/{doc_id}", headers=other).status_code == 404
    assert client.get("/api/v1/documents?limit=abc", headers=auth).status_code == 400
    bad = client.post("/api/v1/documents", headers=auth, data={"direction": "sideways"})
    assert bad.status_code == 400
