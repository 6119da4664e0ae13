"""Signing inside the workflow: authorization, real pyHanko through a real RQ worker, records."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest

from models.delegation import Delegation
from models.document import Document
from models.signature import SignatureRecord, SigningAuthorization, SigningIdentity
from workflows import engine, signature
from workflows.errors import Forbidden, ValidationFailed
from workflows.signing import SigningError
from workflows.signing import demo_pki as pki_module
from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf
from workflows.signing.demo_pki import DemoPki, make_demo_pki
from workflows.signing.placement import signature_widgets
from workflows.signing.pdf import open_pdf
from workflows.workflow_definition import import_definition

PASSPHRASE = "mật khẩu thử"
PIN = "246810"

SEALED_FLOW = {
    "code": "outgoing_sealed",
    "name": "Văn bản đi: ký nháy, ký, đóng dấu số",
    "kind": "document",
    "directions": ["outgoing"],
    "doc_types": ["QĐ"],
    "initial_state": "draft",
    "states": [
        {"code": "draft", "label": "Dự thảo", "actors": [{"relation": "drafter"}]},
        {
            "code": "review",
            "label": "Trình ký nháy",
            "circuit": "visa",
            "on_circuit_done": "signing",
            "on_circuit_reject": "draft",
        },
        {"code": "signing", "label": "Chờ ký", "actors": [{"relation": "signer"}]},
        {"code": "sealing", "label": "Chờ đóng dấu", "actors": [{"role": "van_thu"}]},
        {"code": "issued", "label": "Đã phát hành", "final": True},
    ],
    "transitions": [
        {
            "code": "submit",
            "label": "Trình duyệt",
            "from": ["draft"],
            "to": "review",
            "who": [{"relation": "drafter"}],
            "actions": [{"id": "request_initials", "params": {"circuit": "visa"}}],
        },
        {
            "code": "sign",
            "label": "Ký ban hành",
            "from": ["signing"],
            "to": "sealing",
            "who": [{"relation": "signer"}],
            "scope": "sign",
            "inputs": ["comment"],
            "actions": [{"id": "request_signature"}],
        },
        {
            "code": "return_to_drafter",
            "label": "Trả lại",
            "from": ["signing"],
            "to": "draft",
            "who": [{"relation": "signer"}],
            "scope": "sign",
            "inputs": ["reason"],
        },
        {
            "code": "seal",
            "label": "Đóng dấu và phát hành",
            "from": ["sealing"],
            "to": "issued",
            "who": [{"role": "van_thu"}],
            "actions": [{"id": "apply_seal"}],
        },
    ],
    "circuits": [
        {
            "code": "visa",
            "name": "Ký nháy",
            "steps": [
                {
                    "kind": "initial",
                    "label": "Trưởng phòng ký nháy",
                    "who": [{"relation": "drafting_unit_head"}],
                    "mode": "any",
                    "reject_to": "drafter",
                }
            ],
        }
    ],
}


def issue_person(pki: DemoPki, name: str, **dates: dt.datetime) -> pki_module.TestIdentity:
    """Issue one more certificate from the demo CA (the test PKI has no unit heads)."""
    now = dt.datetime.now(dt.UTC)
    key = pki_module._new_key(2048)
    cert = pki_module._issue(
        subject=pki_module._name(name),
        key=key,
        issuer=pki.ca,
        not_before=dates.get("not_before", now - dt.timedelta(days=1)),
        not_after=dates.get("not_after", now + dt.timedelta(days=100)),
    )
    return pki_module.TestIdentity(name, key, cert, (pki.ca.cert,))


@dataclass(frozen=True)
class Pki:
    demo: DemoPki
    head: pki_module.TestIdentity  # Lê Văn Cường, the drafting unit's head who initials

    def p12(self, who: str) -> bytes:
        person = self.head if who == "head" else getattr(self.demo, who)
        return person.pkcs12(PASSPHRASE.encode())


@pytest.fixture(scope="session")
def sig_pki() -> Pki:
    """The test PKI, built once per session."""
    demo = make_demo_pki()
    return Pki(demo, issue_person(demo, "Lê Văn Cường"))


@pytest.fixture(scope="session")
def director_pdf() -> bytes:
    """A draft decision for the director: his name printed under the signature block."""
    return make_sample_pdf(
        SampleDocument(
            agency="SỞ CÔNG THƯƠNG TỈNH ĐỒNG NAI",
            parent="UBND TỈNH ĐỒNG NAI",
            number="…/QĐ-SCT",
            authority=None,
            title="GIÁM ĐỐC",
            signer="Nguyễn Văn An",
        )
    )


@pytest.fixture
def identities(users: dict[str, Any], sig_pki: Pki) -> dict[str, SigningIdentity]:
    """Signing identities for the head, the director, the deputy and the agency seal."""
    out = {}
    for username, who in (
        ("truongphong", "head"),
        ("giamdoc", "leader"),
        ("phogiamdoc", "deputy"),
    ):
        out[username] = signature.create_pkcs12_identity(
            sig_pki.p12(who), PASSPHRASE, owner=users[username], pin=PIN
        )
    out["seal"] = signature.create_pkcs12_identity(
        sig_pki.p12("seal"), PASSPHRASE, agency_seal=True, pin=PIN
    )
    signature.add_trust_root(sig_pki.demo.ca.cert_pem)
    return out


@pytest.fixture
def sealed_flow() -> None:
    import_definition(SEALED_FLOW, None, publish_now=True)


DocFactory = Callable[..., Document]


@pytest.fixture
def awaiting(make_document, users, director_pdf, sealed_flow) -> DocFactory:
    """Make a decision waiting at `state` (review: initial; signing: the director's signature)."""

    def make(state: str = "signing", pdf: bytes | None = None, **fields: Any) -> Document:
        doc = make_document(
            "outgoing",
            "chuyenvien",
            type_name="Quyết định",
            signer=fields.pop("signer", users["giamdoc"]),
            signer_title="Giám đốc",
            signer_name="Nguyễn Văn An",
            **fields,
        )
        signature.attach_pdf(doc, pdf or director_pdf, "quyet-dinh.pdf", users["chuyenvien"])
        engine.transition(doc.pk, "submit", users["chuyenvien"])
        if state == "signing":
            engine.transition(doc.pk, "circuit_approve", users["truongphong"])
        doc = Document.objects.get(pk=doc.pk)
        assert doc.state == state
        return doc

    return make


def pdf_of(doc: Document) -> bytes:
    doc.reload()
    return signature.read_file(doc.current_pdf.file_id)


def signed_fields(data: bytes) -> list[str]:
    return [name for name, _, _, signed in signature_widgets(open_pdf(data).prev) if signed]


def pdftotext(data: bytes, tmp_path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


# Kinds and rights --------------------------------------------------------------------------


def test_signing_kind_follows_the_circuit_step_and_actions(awaiting, users, identities):
    doc = awaiting("review")
    assert signature.signing_kind_for(doc, "circuit_approve") == "initial"
    doc = awaiting("signing")
    assert signature.signing_kind_for(doc, "sign") == "sign"
    assert signature.signing_kind_for(doc, "seal") == "seal"
    assert signature.signing_kind_for(doc, "return_to_drafter") is None
    assert signature.signing_transition_for(doc, users["giamdoc"]) == ("sign", "sign")
    assert signature.signing_transition_for(doc, users["chuyenvien"]) is None


def test_a_specialist_cannot_sign_for_the_director(awaiting, users, identities):
    doc = awaiting("signing")
    with pytest.raises(Forbidden):
        signature.start_signing(doc, users["chuyenvien"], "sign", {}, PIN)
    outsider = users["cv.khtc"]  # cannot even see the document
    with pytest.raises(Exception, match="không có quyền xem"):
        signature.start_signing(doc, outsider, "sign", {}, PIN)
    assert SigningAuthorization.objects.count() == 0


def test_the_transition_without_a_signature_is_refused(awaiting, users):
    doc = awaiting("signing")
    with pytest.raises(ValidationFailed, match="chưa được ký số"):
        engine.transition(doc.pk, "sign", users["giamdoc"])
    assert Document.objects.get(pk=doc.pk).state == "signing"


# One signature through a real worker -------------------------------------------------------


def test_director_signs_through_a_real_worker(awaiting, users, identities, run_jobs, tmp_path):
    doc = awaiting("signing")
    before = pdf_of(doc)
    job = signature.start_signing(doc, users["giamdoc"], "sign", {"comment": "Đồng ý"}, PIN)
    assert job.id == f"sign-{doc.pk}-{doc.current_pdf.rev}-sign-{users['giamdoc'].pk}"
    assert job.origin == "signing"
    assert PIN not in repr(job.args) + repr(job.kwargs)
    assert Document.objects.get(pk=doc.pk).state == "signing"  # nothing happens before the job
    run_jobs()
    job.refresh()
    assert job.get_status() == "finished", job.meta
    doc.reload()
    assert doc.state == "sealing"
    assert doc.history[-1].action == "sign" and doc.history[-1].comment == "Đồng ý"
    assert [r.kind for r in doc.revisions] == ["upload", "signed"]
    signed = doc.revisions[-1]
    assert signed.source_rev == 1 and signed.rev == 2
    after = pdf_of(doc)
    assert after.startswith(before), "a signed revision is an incremental update"
    found = SignatureRecord.objects.get()
    assert found.status == "done" and found.transitioned_at is not None
    assert (found.revision, found.source_revision, found.signed_revision) == (1, 1, 2)
    assert found.cert_common_name == "Nguyễn Văn An"
    assert found.cert_sha256 == identities["giamdoc"].cert_sha256
    assert found.revision_sha256 == doc.revisions[0].sha256
    assert found.backend == "pkcs12" and found.job_id == job.id
    assert signed_fields(after) == [found.field_name]
    results = signature.verification_for(doc)
    assert len(results) == 1
    assert results[0]["intact"] and results[0]["valid"] and results[0]["trusted"]
    assert results[0]["record"]["signer"] == "Nguyễn Văn An"


def test_double_click_signs_once(awaiting, users, identities, run_jobs):
    doc = awaiting("signing")
    first = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    second = signature.start_signing(doc, users["giamdoc"], "sign", {}, "000000")
    assert first.id == second.id
    assert SigningAuthorization.objects.count() == 1  # the second click asked for nothing
    run_jobs()
    doc.reload()
    assert len(doc.revisions) == 2
    assert signed_fields(pdf_of(doc)) == [SignatureRecord.objects.get().field_name]


def test_wrong_pin_changes_nothing(awaiting, users, identities):
    doc = awaiting("signing")
    with pytest.raises(signature.InvalidSigningCode):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, "999999")
    with pytest.raises(signature.SigningCodeRequired):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, "")
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 1
    assert SignatureRecord.objects.count() == 0
    assert SigningIdentity.objects.get(pk=identities["giamdoc"].pk).pin_failures == 1


def test_pin_locks_after_repeated_failures(awaiting, users, identities):
    doc = awaiting("signing")
    for _ in range(signature.PIN_MAX_FAILURES):
        with pytest.raises(signature.InvalidSigningCode):
            signature.start_signing(doc, users["giamdoc"], "sign", {}, "111111")
    with pytest.raises(signature.InvalidSigningCode, match="tạm bị khóa"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)


def test_totp_authorizes_and_is_accepted_once(awaiting, users, identities, run_jobs):
    director = users["giamdoc"]
    secret = pyotp.random_base32()
    director.update(set__totp_secret=secret, set__totp_enabled=True)
    director.reload()
    SigningIdentity.objects(pk=identities["giamdoc"].pk).update_one(
        set__encrypted_key__signing_pin_hash=None
    )
    doc = awaiting("signing")
    code = pyotp.TOTP(secret).now()
    signature.start_signing(doc, director, "sign", {}, code)
    assert SigningAuthorization.objects.get().method == "totp"
    run_jobs()
    other = awaiting("signing")
    with pytest.raises(signature.InvalidSigningCode):
        signature.start_signing(other, director, "sign", {}, code)  # replayed


def test_no_identity_or_expired_certificate_is_refused_at_once(awaiting, users, sig_pki):
    doc = awaiting("signing")
    with pytest.raises(signature.SigningRefused, match="chưa có chứng thư số"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    signature.create_pkcs12_identity(
        sig_pki.demo.expired.pkcs12(PASSPHRASE.encode()),
        PASSPHRASE,
        owner=users["giamdoc"],
        pin=PIN,
        check_dates=False,
    )
    with pytest.raises(signature.SigningRefused, match="đã hết hạn"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)


def test_upload_refuses_expired_mismatched_and_wrong_passphrase(users, sig_pki):
    demo = sig_pki.demo
    with pytest.raises(signature.SigningRefused, match="hết hạn"):
        signature.create_pkcs12_identity(
            demo.expired.pkcs12(PASSPHRASE.encode()), PASSPHRASE, owner=users["giamdoc"]
        )
    with pytest.raises(signature.SigningRefused, match="không khớp"):
        signature.create_pkcs12_identity(
            demo.mismatched_pkcs12(PASSPHRASE.encode()), PASSPHRASE, owner=users["giamdoc"]
        )
    with pytest.raises(signature.SigningRefused, match="Mật khẩu"):
        signature.create_pkcs12_identity(sig_pki.p12("leader"), "sai", owner=users["giamdoc"])
    assert SigningIdentity.objects.count() == 0


def test_key_material_is_encrypted_at_rest(users, sig_pki, app):
    identity = signature.create_pkcs12_identity(
        sig_pki.p12("leader"), PASSPHRASE, owner=users["giamdoc"], pin=PIN
    )
    raw = SigningIdentity._get_collection().find_one({"_id": identity.pk})
    stored = raw["encrypted_key"]
    assert sig_pki.p12("leader") not in bytes(stored["pkcs12"])
    assert PASSPHRASE.encode() not in bytes(stored["passphrase"])
    assert PIN not in stored["signing_pin_hash"]
    saved = app.config["MASTER_KEY"]
    app.config["MASTER_KEY"] = "another-master-key-for-this-test-only"
    try:
        with pytest.raises(SigningError, match="giải mã"):
            signature.load_identity(identity)
    finally:
        app.config["MASTER_KEY"] = saved
    assert signature.load_identity(identity).cert_info.common_name == "Nguyễn Văn An"
