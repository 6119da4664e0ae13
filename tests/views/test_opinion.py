"""Opinion screens and API: ask, answer (JSON and multipart), close, summary downloads."""

import datetime as dt
import io

import openpyxl
import pytest

from models.audit import utcnow
from models.delegation import Delegation
from models.opinion import OpinionRequest
from tests.conftest import api_token, csrf_token, web_login
from tests.fixtures.files.samples import pdf_bytes
from workflows import opinion as opinions

VN = dt.timezone(dt.timedelta(hours=7))


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def request_(users, units):
    def make(hours=2.0, **data):
        return opinions.create_request(
            users["chanhvanphong"],
            {
                "subject": "Góp ý quy chế làm việc",
                "deadline": (utcnow() + dt.timedelta(hours=hours)).isoformat(),
                **data,
            },
            [f"unit:{units[u].pk}" for u in ("KHTC", "QLCN", "QLTM")],
        )

    return make


def test_api_lists_requests_for_me_with_what_i_may_answer(client, request_, users, units):
    req = request_()
    assert client.get("/api/v1/opinions").status_code == 401
    body = client.get("/api/v1/opinions", headers=bearer(api_token(client, "tp.khtc"))).json
    assert body["total"] == 1
    item = body["items"][0]
    assert item["id"] == str(req.pk) and item["status"] == "open"
    assert item["can_answer"] == [
        {
            "key": f"unit:{units['KHTC'].pk}",
            "name": "Phòng Kế hoạch - Tài chính",
            "on_behalf_of": None,
            "answer": None,
            "comment": None,
        }
    ]
    outsider = bearer(api_token(client, "chanhthanhtra"))
    assert client.get("/api/v1/opinions", headers=outsider).json["total"] == 0
    missing = client.get(f"/api/v1/opinions/{req.pk}", headers=outsider)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    bad = client.get("/api/v1/opinions?status=later", headers=outsider)
    assert bad.status_code == 400 and "open hoặc closed" in bad.json["error"]["message"]


def test_api_answers_as_head_and_as_delegate_and_refuses_others(client, request_, users, units):
    req = request_()
    head = bearer(api_token(client, "tp.khtc"))
    ok = client.post(
        f"/api/v1/opinions/{req.pk}/answer",
        json={"answer": "agree", "comment": "Thống nhất"},
        headers=head,
    )
    assert ok.status_code == 200
    mine = next(t for t in ok.json["targets"] if t["key"] == f"unit:{units['KHTC'].pk}")
    assert mine["answer"] == "agree" and mine["answered_by"] == "Bùi Minh Khoa"
    # Answers are private by default: the other units see only that KHTC answered.
    other = client.get(f"/api/v1/opinions/{req.pk}", headers=bearer(api_token(client, "tp.qlcn")))
    khtc = next(t for t in other.json["targets"] if t["key"] == f"unit:{units['KHTC'].pk}")
    assert khtc["answered"] is True and "answer" not in khtc
    deputy = bearer(api_token(client, "phophong"))
    refused = client.post(
        f"/api/v1/opinions/{req.pk}/answer", json={"answer": "agree"}, headers=deputy
    )
    assert refused.status_code == 403
    assert "Phòng Quản lý Thương mại" in refused.json["error"]["message"]
    now = utcnow()
    Delegation(
        principal=users["truongphong"],
        delegate=users["phophong"],
        scopes=["process"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=1),
    ).save()
    listed = client.get("/api/v1/opinions?status=open", headers=deputy).json["items"][0]
    assert listed["can_answer"][0]["on_behalf_of"] == "Lê Văn Cường"
    done = client.post(
        f"/api/v1/opinions/{req.pk}/answer",
        json={"answer": "disagree", "comment": "Chưa phù hợp"},
        headers=deputy,
    )
    assert done.status_code == 200
    qltm = next(t for t in done.json["targets"] if t["key"] == f"unit:{units['QLTM'].pk}")
    assert qltm["on_behalf_of"] == "Lê Văn Cường" and qltm["answered_by"] == "Phạm Thị Dung"
    bad = client.post(f"/api/v1/opinions/{req.pk}/answer", json={"comment": "x"}, headers=head)
    assert bad.status_code == 400


def test_api_refuses_answers_after_close_and_filters_closed(client, request_, users):
    req = request_()
    owner = bearer(api_token(client, "chanhvanphong"))
    closed = client.post(f"/api/v1/opinions/{req.pk}/close", json={}, headers=owner)
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    head = bearer(api_token(client, "tp.khtc"))
    late = client.post(f"/api/v1/opinions/{req.pk}/answer", json={"answer": "agree"}, headers=head)
    assert late.status_code == 409 and late.json["error"]["code"] == "opinion_closed"
    assert client.get("/api/v1/opinions?status=open", headers=head).json["total"] == 0
    assert client.get("/api/v1/opinions?status=closed", headers=head).json["total"] == 1
    summary = client.get(f"/api/v1/opinions/{req.pk}/summary", headers=owner).json
    assert summary["counts"] == {"agree": 0, "disagree": 0, "other": 0, "none": 3}
    assert client.get(f"/api/v1/opinions/{req.pk}/summary", headers=head).status_code == 403


def test_api_creates_with_validation_and_extends(client, users, units):
    owner = bearer(api_token(client, "chanhvanphong"))
    past = client.post(
        "/api/v1/opinions",
        json={
            "subject": "Góp ý",
            "deadline": "2020-01-01T08:00:00+07:00",
            "recipients": [f"unit:{units['KHTC'].pk}"],
        },
        headers=owner,
    )
    assert past.status_code == 400 and "đã qua" in past.json["error"]["message"]
    outside = client.post(
        "/api/v1/opinions",
        json={
            "subject": "Góp ý",
            "deadline": (utcnow() + dt.timedelta(hours=1)).isoformat(),
            "recipients": ["unit:64b000000000000000000000"],
        },
        headers=owner,
    )
    assert outside.status_code == 400 and "không thuộc cơ quan" in outside.json["error"]["message"]
    assert OpinionRequest.objects.count() == 0
    made = client.post(
        "/api/v1/opinions",
        json={
            "subject": "Góp ý",
            "deadline": (utcnow() + dt.timedelta(hours=1)).isoformat(),
            "recipients": [f"unit:{units['KHTC'].pk}"],
            "answers_visible": True,
        },
        headers=owner,
    )
    assert made.status_code == 201 and made.json["answers_visible"] is True
    assert [a["code"] for a in made.json["actions"]] == ["extend", "close"]
    later = (utcnow() + dt.timedelta(hours=3)).isoformat()
    ext = client.post(
        f"/api/v1/opinions/{made.json['id']}/extend", json={"deadline": later}, headers=owner
    )
    assert ext.status_code == 200 and len(ext.json["extensions"]) == 1
    head = bearer(api_token(client, "tp.khtc"))
    refused = client.post(
        f"/api/v1/opinions/{made.json['id']}/extend", json={"deadline": later}, headers=head
    )
    assert refused.status_code == 403


def test_api_multipart_answer_with_a_file(client, request_, app):
    pytest.importorskip("workflows.storage")
    req = request_()
    head = bearer(api_token(client, "tp.khtc"))
    ok = client.post(
        f"/api/v1/opinions/{req.pk}/answer",
        data={"answer": "other", "comment": "Xem tệp", "file": (io.BytesIO(pdf_bytes()), "y.pdf")},
        headers=head,
        content_type="multipart/form-data",
    )
    assert ok.status_code == 200, ok.json
    assert next(t for t in ok.json["targets"] if t.get("file"))["file"]["filename"] == "y.pdf"


def test_api_refuses_an_oversized_answer_file(client, request_, app):
    req = request_()
    head = bearer(api_token(client, "tp.khtc"))
    app.config["UPLOAD_MAX_BYTES"] = 1024
    try:
        big = client.post(
            f"/api/v1/opinions/{req.pk}/answer",
            data={"answer": "agree", "file": (io.BytesIO(b"%PDF" + b"0" * 5000), "lon.pdf")},
            headers=head,
            content_type="multipart/form-data",
        )
    finally:
        app.config["UPLOAD_MAX_BYTES"] = 50 * 1024 * 1024
    assert big.status_code == 400 and "quá lớn" in big.json["error"]["message"]
    assert OpinionRequest.objects.get(pk=req.pk).counts["none"] == 3


def test_screens_ask_answer_close_and_download_the_summary(client, users, units):
    web_login(client, "chanhvanphong")
    page = client.get("/opinions/new")
    assert page.status_code == 200 and "Hạn trả lời" in page.text
    deadline = (utcnow() + dt.timedelta(hours=2)).astimezone(VN).strftime("%Y-%m-%dT%H:%M")
    form = {
        "csrf_token": csrf_token(page.text),
        "subject": "Góp ý dự thảo quy chế",
        "deadline": deadline,
        "recipients": [f"unit:{units['KHTC'].pk}", f"unit:{units['QLCN'].pk}"],
    }
    past = client.post("/opinions/new", data={**form, "deadline": "2020-01-01T08:00"})
    assert "đã qua" in past.text and OpinionRequest.objects.count() == 0
    made = client.post("/opinions/new", data=form)
    assert made.status_code == 302
    req = OpinionRequest.objects.get()
    detail = client.get(made.location)
    assert "Góp ý dự thảo quy chế" in detail.text and 'id="close-form"' in detail.text
    client.post("/auth/logout", data={"csrf_token": csrf_token(detail.text)})

    web_login(client, "tp.khtc")
    listing = client.get("/opinions/")
    assert "Góp ý dự thảo quy chế" in listing.text and "chờ ý kiến" in listing.text
    detail = client.get(f"/opinions/{req.pk}")
    assert 'class="card card-body py-2 mb-3 answer-form"' in detail.text
    assert 'id="close-form"' not in detail.text
    answered = client.post(
        f"/opinions/{req.pk}/answer",
        data={
            "csrf_token": csrf_token(detail.text),
            "target": f"unit:{units['KHTC'].pk}",
            "answer": "agree",
            "comment": "Nhất trí",
        },
        follow_redirects=True,
    )
    assert "Đã ghi nhận ý kiến." in answered.text
    assert client.get(f"/opinions/{req.pk}/summary").status_code == 403
    client.post("/auth/logout", data={"csrf_token": csrf_token(answered.text)})

    web_login(client, "chanhvanphong")
    page = client.get(f"/opinions/{req.pk}")
    closed = client.post(
        f"/opinions/{req.pk}/close",
        data={"csrf_token": csrf_token(page.text)},
        follow_redirects=True,
    )
    assert "Đã kết thúc lấy ý kiến." in closed.text
    assert "Không có ý kiến (quá hạn)" in closed.text and "Nhất trí" in closed.text
    pdf = client.get(f"/opinions/{req.pk}/summary.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    xlsx = client.get(f"/opinions/{req.pk}/summary.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "Phòng Quản lý Công nghiệp" in values and "Nhất trí" in values


def test_the_document_page_offers_to_ask_opinions_on_a_draft(client, make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    web_login(client, "chuyenvien")
    page = client.get(f"/documents/{doc.pk}")
    assert 'id="ask-opinions"' in page.text
    form = client.get(f"/opinions/new?document={doc.pk}")
    assert doc.subject in form.text and f'name="document" value="{doc.pk}"' in form.text


def test_openapi_lists_the_opinion_and_internal_document_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/opinions", "/opinions/{id}/answer", "/internal-documents/{id}"):
        assert path in paths
