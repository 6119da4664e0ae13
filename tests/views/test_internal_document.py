"""Internal document screens and API: send, inbox, read receipts, forwarding."""

import io

import pytest

from models.delivery import Delivery
from models.document import Document
from tests.conftest import api_token, csrf_token, web_login
from tests.fixtures.files.samples import pdf_bytes


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_api_sends_and_the_recipient_reads_with_a_receipt(client, users, units):
    sender = bearer(api_token(client, "chanhvanphong"))
    made = client.post(
        "/api/v1/internal-documents",
        json={
            "subject": "Thông báo lịch trực Tết",
            "content": "Các đơn vị cử người trực.",
            "recipients": {"units": [str(units["QLTM"].pk)], "users": [str(users["cv.khtc"].pk)]},
        },
        headers=sender,
    )
    assert made.status_code == 201, made.json
    doc_id = made.json["id"]
    assert made.json["state"] == "sent"
    assert [d["recipient"]["name"] for d in made.json["deliveries"]] == [
        "Phòng Quản lý Thương mại",
        "Ngô Thị Lan (KHTC)",
    ]
    reader = bearer(api_token(client, "cv.khtc"))
    inbox = client.get("/api/v1/internal-documents", headers=reader).json
    assert [i["id"] for i in inbox["items"]] == [doc_id]
    assert inbox["items"][0]["delivery"]["read_at"] is None
    opened = client.get(f"/api/v1/internal-documents/{doc_id}", headers=reader)
    assert opened.status_code == 200 and opened.json["content"] == "Các đơn vị cử người trực."
    receipts = client.get(f"/api/v1/internal-documents/{doc_id}", headers=sender).json
    read = {d["recipient"]["name"]: d for d in receipts["deliveries"]}
    assert read["Ngô Thị Lan (KHTC)"]["read_by"] == "Ngô Thị Lan"
    assert read["Phòng Quản lý Thương mại"]["read_at"] is None
    sent = client.get("/api/v1/internal-documents?box=sent", headers=sender).json["items"]
    assert (sent[0]["delivered"], sent[0]["read"]) == (2, 1)
    outsider = bearer(api_token(client, "tp.qlcn"))
    hidden = client.get(f"/api/v1/internal-documents/{doc_id}", headers=outsider)
    assert hidden.status_code == 404 and hidden.json["error"]["code"] == "not_found"


def test_api_refuses_bad_input_with_json_errors(client, units):
    sender = bearer(api_token(client, "chanhvanphong"))
    for body, message in (
        ({"subject": "X", "recipients": ["unit:64b000000000000000000000"]}, "không thuộc cơ quan"),
        ({"subject": "", "recipients": [f"unit:{units['QLTM'].pk}"]}, "trích yếu"),
        ({"subject": "X", "recipients": "QLTM"}, "danh sách"),
    ):
        response = client.post("/api/v1/internal-documents", json=body, headers=sender)
        assert response.status_code == 400 and message in response.json["error"]["message"]
    assert Document.objects(direction="internal").count() == 0
    assert client.post("/api/v1/internal-documents", json={}).status_code == 401


def test_api_multipart_with_files_forward_and_redistribute(client, users, units):
    pytest.importorskip("workflows.storage")
    sender = bearer(api_token(client, "chanhvanphong"))
    made = client.post(
        "/api/v1/internal-documents",
        data={
            "subject": "Kế hoạch tổ chức hội nghị",
            "units": [str(units["QLTM"].pk)],
            "files": [(io.BytesIO(pdf_bytes()), "ke-hoach.pdf")],
        },
        headers=sender,
        content_type="multipart/form-data",
    )
    assert made.status_code == 201, made.json
    assert [a["filename"] for a in made.json["attachments"]] == ["ke-hoach.pdf"]
    head = bearer(api_token(client, "truongphong"))
    detail = client.get(f"/api/v1/internal-documents/{made.json['id']}", headers=head).json
    assert detail["can_redistribute"][0]["name"] == "Phòng Quản lý Thương mại"
    out = client.post(
        f"/api/v1/internal-documents/{made.json['id']}/redistribute",
        json={"users": [str(users["chuyenvien"].pk)], "note": "Em chuẩn bị"},
        headers=head,
    )
    assert out.status_code == 201 and out.json["deliveries"][0]["how"] == "redistributed"
    staff = bearer(api_token(client, "chuyenvien"))
    refused = client.post(
        f"/api/v1/internal-documents/{made.json['id']}/redistribute",
        json={"users": [str(users["phophong"].pk)]},
        headers=staff,
    )
    assert refused.status_code == 403
    fwd = client.post(
        f"/api/v1/internal-documents/{made.json['id']}/forward",
        json={"users": [str(users["phophong"].pk)]},
        headers=staff,
    )
    assert fwd.status_code == 201


def test_screens_send_inbox_open_and_forward(client, users, units):
    web_login(client, "chanhvanphong")
    page = client.get("/internal-documents/new")
    assert page.status_code == 200 and "Nơi nhận" in page.text
    token = csrf_token(page.text)
    bad = client.post(
        "/internal-documents/new",
        data={
            "csrf_token": token,
            "subject": "Họp",
            "recipients": ["unit:64b000000000000000000000"],
        },
    )
    assert "không thuộc cơ quan" in bad.text and Document.objects.count() == 0
    sent = client.post(
        "/internal-documents/new",
        data={
            "csrf_token": token,
            "subject": "Triệu tập họp chi bộ",
            "content": "14 giờ chiều nay.",
            "recipients": [f"unit:{units['QLTM'].pk}"],
        },
        follow_redirects=True,
    )
    assert "Đã gửi văn bản nội bộ." in sent.text and "Chưa đọc" in sent.text
    doc = Document.objects.get(direction="internal")
    client.post("/auth/logout", data={"csrf_token": csrf_token(sent.text)})

    web_login(client, "chuyenvien")
    inbox = client.get("/internal-documents/")
    assert "Triệu tập họp chi bộ" in inbox.text and "Chưa đọc" in inbox.text
    opened = client.get(f"/internal-documents/{doc.pk}")
    assert "14 giờ chiều nay." in opened.text and 'id="forward-form"' in opened.text
    assert Delivery.objects.get(document=doc.pk).read_by_name == "Hoàng Văn Em"
    forwarded = client.post(
        f"/internal-documents/{doc.pk}/forward",
        data={"csrf_token": csrf_token(opened.text), "users": [str(users["phophong"].pk)]},
        follow_redirects=True,
    )
    assert "Đã chuyển tiếp tới: Phạm Thị Dung (QLTM)." in forwarded.text
    reply = client.get(f"/internal-documents/new?reply_to={doc.pk}")
    assert "Trả lời: Triệu tập họp chi bộ" in reply.text
    assert f'value="user:{users["chanhvanphong"].pk}" selected' in reply.text
    # The document page shows the receipts panel too.
    page = client.get(f"/documents/{doc.pk}")
    assert 'id="internal-panel"' in page.text and "Phạm Thị Dung (QLTM)" in page.text
