"""Signing screens and API: verification page and API, sign forms, batch progress, key admin."""

from __future__ import annotations

import io
import re

import pytest

from models.document import Document
from models.role import Role
from models.signature import SignatureRecord, SigningIdentity, TrustRoot
from tests.conftest import api_token, csrf_token, web_login
from tests.workflows import test_signature as shared
from workflows import signature, signing_run, storage

# fixtures shared with the workflow tests
awaiting, director_pdf, identities = shared.awaiting, shared.director_pdf, shared.identities
fast_pin_hash, sealed_flow, sig_pki = shared.fast_pin_hash, shared.sealed_flow, shared.sig_pki
PASSPHRASE, PIN = shared.PASSPHRASE, shared.PIN


def bearer(client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, username)}"}


@pytest.fixture
def signed_pdf(awaiting, users, identities, run_jobs) -> bytes:
    doc = awaiting("signing")
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    doc.reload()
    assert doc.state == "sealing"
    return storage.read_file(doc.current_pdf.file_id)


# Verification --------------------------------------------------------------------------------


def test_verify_page_shows_each_signature(client, signed_pdf):
    web_login(client, "chuyenvien")
    page = client.get("/signatures/verify/")
    assert page.status_code == 200 and "Kiểm tra chữ ký số" in page.text
    response = client.post(
        "/signatures/verify/",
        data={"csrf_token": csrf_token(page.text), "file": (io.BytesIO(signed_pdf), "qd.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.text
    assert "Nguyễn Văn An" in response.text
    assert "Chữ ký hợp lệ và tin cậy." in response.text
    assert "B-B" in response.text


def test_verify_page_refuses_bad_input(client, app):
    web_login(client, "chuyenvien")
    page = client.get("/signatures/verify/")
    token = csrf_token(page.text)
    no_csrf = client.post(
        "/signatures/verify/",
        data={"file": (io.BytesIO(b"%PDF-1.7"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert no_csrf.status_code == 400
    not_pdf = client.post(
        "/signatures/verify/",
        data={"csrf_token": token, "file": (io.BytesIO(b"hello"), "a.txt")},
        content_type="multipart/form-data",
    )
    assert not_pdf.status_code == 400 and "Chỉ kiểm tra được tệp PDF" in not_pdf.text
    damaged = client.post(
        "/signatures/verify/",
        data={"csrf_token": token, "file": (io.BytesIO(b"%PDF-1.7\n garbage"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert damaged.status_code == 400 and "PDF" in damaged.text
    saved = app.config["UPLOAD_MAX_BYTES"]
    app.config["UPLOAD_MAX_BYTES"] = 1024
    try:
        big = client.post(
            "/signatures/verify/",
            data={"csrf_token": token, "file": (io.BytesIO(b"%PDF-1.7" + b"0" * 4096), "a.pdf")},
            content_type="multipart/form-data",
        )
    finally:
        app.config["UPLOAD_MAX_BYTES"] = saved
    assert big.status_code == 400 and "quá lớn" in big.text


def test_verify_api(client, signed_pdf):
    response = client.post(
        "/api/v1/verify",
        data={"file": (io.BytesIO(signed_pdf), "qd.pdf")},
        headers=bearer(client, "chuyenvien"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    [result] = response.json["signatures"]
    assert result["signer"] == "Nguyễn Văn An"
    assert result["intact"] and result["valid"] and result["trusted"]
    assert result["coverage"] == "entire_file" and result["pades_level"] == "B-B"
    assert client.post("/api/v1/verify").status_code == 401
    bad = client.post(
        "/api/v1/verify",
        data={"file": (io.BytesIO(b"not a pdf"), "x.pdf")},
        headers=bearer(client, "chuyenvien"),
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and bad.json["error"]["message"]


def test_untrusted_when_the_root_is_not_uploaded(client, signed_pdf):
    TrustRoot.objects.delete()
    response = client.post(
        "/api/v1/verify",
        data={"file": (io.BytesIO(signed_pdf), "qd.pdf")},
        headers=bearer(client, "chuyenvien"),
        content_type="multipart/form-data",
    )
    [result] = response.json["signatures"]
    assert result["valid"] and not result["trusted"]


def test_document_panel_and_sign_form_partials(app, awaiting, users, identities, run_jobs):
    from flask import render_template_string
    from flask_login import login_user

    doc = awaiting("signing")
    with app.test_request_context("/documents/x"):
        login_user(users["giamdoc"])
        form = render_template_string("{% include 'signature/_sign_form.html' %}", doc=doc)
        assert 'name="transition" value="sign"' in form and "Ký ban hành" in form
        assert render_template_string("{% include 'signature/_panel.html' %}", doc=doc).count(
            "Tệp không có chữ ký số"
        )
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    doc.reload()
    with app.test_request_context("/documents/x"):
        login_user(users["chuyenvien"])
        assert "sign-form" not in render_template_string(
            "{% include 'signature/_sign_form.html' %}", doc=doc
        )
        panel = render_template_string("{% include 'signature/_panel.html' %}", doc=doc)
    assert (
        "Nguyễn Văn An" in panel and "Ký ban hành" in panel and "Chữ ký hợp lệ và tin cậy." in panel
    )


# Signing through the API and the portal ---------------------------------------------------


def test_sign_through_the_api(client, awaiting, users, identities, run_jobs):
    doc = awaiting("signing")
    headers = bearer(client, "giamdoc")
    wrong = client.post(
        "/api/v1/signatures", json={"document": str(doc.pk), "code": "000000"}, headers=headers
    )
    assert wrong.status_code == 403 and wrong.json["error"]["code"] == "invalid_signing_code"
    specialist = client.post(
        "/api/v1/signatures",
        json={"document": str(doc.pk), "transition": "sign", "code": PIN},
        headers=bearer(client, "chuyenvien"),
    )
    assert specialist.status_code == 403
    accepted = client.post(
        "/api/v1/signatures",
        json={"document": str(doc.pk), "code": PIN, "comment": "Ký"},
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.json
    job = accepted.json["job"]
    assert job["status"] == "queued" and job["id"].startswith(f"sign-{doc.pk}-")
    run_jobs()
    status = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json
    assert status["status"] == "finished"
    listing = client.get(f"/api/v1/signatures?document={doc.pk}", headers=headers).json
    [found] = listing["records"]
    assert found["status"] == "done" and found["signer"] == "Nguyễn Văn An"
    assert found["signed_revision"] == 2 and found["certificate"]["sha256_fingerprint"]
    assert listing["verification"][0]["trusted"]
    outsider = client.get(
        f"/api/v1/signatures?document={doc.pk}", headers=bearer(client, "cv.khtc")
    )
    assert outsider.status_code == 404


def test_sign_form_in_the_portal_and_job_progress(client, awaiting, users, identities, run_jobs):
    doc = awaiting("signing")
    page = web_login(client, "giamdoc")
    response = client.post(
        f"/signatures/documents/{doc.pk}/sign",
        data={
            "csrf_token": csrf_token(client.get("/signatures/").text),
            "transition": "sign",
            "code": PIN,
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302, page.text
    location = response.headers["Location"]
    assert "/signatures/jobs/sign-" in location and "evil" not in location
    job_page = client.get(location)
    assert "Tiến trình ký số" in job_page.text
    job_id = re.search(r"/signatures/jobs/([^?]+)", location).group(1)
    run_jobs()
    state = client.get(f"/signatures/jobs/{job_id}.json").json
    assert state["status"] == "finished" and state["progress"]["done"] == 1
    assert Document.objects.get(pk=doc.pk).state == "sealing"
    other = client.application.test_client()
    web_login(other, "chuyenvien")
    assert other.get(f"/signatures/jobs/{job_id}.json").status_code == 404


def test_wrong_code_in_the_portal_is_shown(client, awaiting, users, identities):
    doc = awaiting("signing")
    web_login(client, "giamdoc")
    response = client.post(
        f"/signatures/documents/{doc.pk}/sign",
        data={
            "csrf_token": csrf_token(client.get("/signatures/").text),
            "transition": "sign",
            "code": "000000",
            "next": "/signatures/",
        },
        follow_redirects=True,
    )
    assert "Mã OTP hoặc mã PIN ký số không đúng." in response.text
    assert SignatureRecord.objects.count() == 0


def test_batch_page_progress_and_failures(client, awaiting, users, identities, run_jobs):
    docs = [awaiting("signing") for _ in range(3)]
    broken = signing_run._described(b"%PDF-1.7\n garbage", "x.pdf", None)
    Document.objects(pk=docs[2].pk).update_one(
        set__revisions__0__file_id=broken["file_id"], set__revisions__0__sha256=broken["sha256"]
    )
    web_login(client, "giamdoc")
    page = client.get("/signatures/")
    assert page.status_code == 200
    assert all(str(d.pk) in page.text for d in docs)
    response = client.post(
        "/signatures/batch",
        data={
            "csrf_token": csrf_token(page.text),
            "documents": [str(d.pk) for d in docs],
            "code": PIN,
        },
    )
    assert response.status_code == 302
    job_id = re.search(r"/signatures/jobs/([^?]+)", response.headers["Location"]).group(1)
    queued = client.get(f"/signatures/jobs/{job_id}.json").json
    assert queued["status"] == "queued"
    run_jobs()
    state = client.get(f"/signatures/jobs/{job_id}.json").json
    assert state["status"] == "finished"
    assert state["progress"] == {"done": 3, "total": 3, "signed": 2, "failed": 1}
    [failure] = state["failures"]
    assert failure["document"] == str(docs[2].pk) and "PDF" in failure["error"]
    assert "Không có văn bản nào chờ bạn ký." not in client.get("/signatures/").text


def test_chuyen_vien_sees_nothing_to_sign(client):
    web_login(client, "chuyenvien")
    page = client.get("/signatures/")
    assert "Không có văn bản nào chờ bạn ký." in page.text
    assert '/signatures/"' not in client.get("/").text  # no menu entry without a signing right


# Administration ----------------------------------------------------------------------------


def grant_signing_manage() -> None:
    Role.objects(code="quan_tri").update_one(add_to_set__permissions="signing.manage")


def test_key_admin_needs_signing_manage(client):
    web_login(client, "admin")
    assert client.get("/signing_identity/").status_code == 403
    assert client.get("/trust_root/").status_code == 403
    leader = client.application.test_client()
    web_login(leader, "giamdoc")
    assert leader.get("/signing_identity/").status_code == 403


def test_admin_uploads_a_pkcs12_identity_never_downloadable(client, users, sig_pki):
    grant_signing_manage()
    web_login(client, "admin")
    form = client.get("/signing_identity/new/")
    assert form.status_code == 200 and "Tệp PKCS#12" in form.text
    data = {
        "csrf_token": csrf_token(form.text),
        "label": "Chứng thư số của Giám đốc",
        "owner": str(users["giamdoc"].pk),
        "backend_choice": "pkcs12",
        "passphrase": "sai mật khẩu",
        "signing_pin": PIN,
        "csc_confirm_timeout": "90",
    }
    wrong = client.post(
        "/signing_identity/new/",
        data={**data, "pkcs12_file": (io.BytesIO(sig_pki.p12("leader")), "gd.p12")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Mật khẩu tệp chứng thư số không đúng" in wrong.text
    assert SigningIdentity.objects.count() == 0
    created = client.post(
        "/signing_identity/new/",
        data={
            **data,
            "passphrase": PASSPHRASE,
            "pkcs12_file": (io.BytesIO(sig_pki.p12("leader")), "gd.p12"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert created.status_code == 200
    identity = SigningIdentity.objects.get()
    assert identity.owner == users["giamdoc"] and identity.cert_common_name == "Nguyễn Văn An"
    assert identity.has_signing_pin
    listing = client.get("/signing_identity/")
    assert "Nguyễn Văn An" in listing.text
    details = client.get(f"/signing_identity/details/?id={identity.pk}")
    assert details.status_code == 200
    for text in (listing.text, details.text):
        assert "encrypted_key" not in text and "pkcs12" not in text.lower().replace("pkcs#12", "")
    assert client.get("/signing_identity/export/csv/").status_code in (403, 404, 302)
    from models.audit import AuditEntry

    audit = AuditEntry.objects(object_type="SigningIdentity").first()
    assert audit is not None and PASSPHRASE not in str(audit.detail)


def test_admin_uploads_a_trust_root(client, sig_pki):
    grant_signing_manage()
    web_login(client, "admin")
    form = client.get("/trust_root/new/")
    response = client.post(
        "/trust_root/new/",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "CA thử nghiệm",
            "cert_file": (io.BytesIO(sig_pki.demo.ca.cert_pem), "ca.pem"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    root = TrustRoot.objects.get()
    assert root.name == "CA thử nghiệm" and "VănThư Demo Root CA" in root.subject
    junk = client.post(
        "/trust_root/new/",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "x",
            "cert_file": (io.BytesIO(b"junk"), "x.pem"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "không phải chứng thư số" in junk.text and TrustRoot.objects.count() == 1
