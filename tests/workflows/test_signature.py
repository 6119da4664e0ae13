"""Signing inside the workflow: authorization, real pyHanko through a real RQ worker, records."""

from __future__ import annotations

import datetime as dt
import hashlib
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
from models.user import User
from workflows import (
    engine,
    signature,
    signing_appearance,
    signing_demo,
    signing_identity,
    signing_run,
    signing_verify,
    storage,
)
from workflows.errors import Forbidden, ValidationFailed
from workflows.signing import SigningError
from workflows.signing import demo_pki as pki_module
from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf
from workflows.signing.demo_pki import DemoPki, make_demo_pki
from workflows.signing.pdf import open_pdf
from workflows.signing.placement import signature_widgets
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
        """Return a PKCS#12 file (few KDF rounds: parsing the default costs 0.1 s a test)."""
        key = (id(self), who)
        if key not in _P12:
            _P12[key] = _p12(self, who)
        return _P12[key]


_P12: dict[tuple[int, str], bytes] = {}


def _p12(pki: Pki, who: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

    person = pki.head if who == "head" else getattr(pki.demo, who)
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(1000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSPHRASE.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        person.name.encode(), person.key, person.cert, list(person.chain), encryption
    )


@pytest.fixture(autouse=True)
def fast_pin_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash signing PINs with light argon2 settings (the default costs 0.2 s a hash here)."""
    from argon2 import PasswordHasher

    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(signing_identity, "_hasher", lambda: light)


_SESSION_PKI: list[Pki] = []


@pytest.fixture(scope="session")
def sig_pki() -> Pki:
    """The test PKI, built once per session (also for the modules that import this fixture)."""
    if not _SESSION_PKI:
        demo = make_demo_pki()
        _SESSION_PKI.append(Pki(demo, issue_person(demo, "Lê Văn Cường")))
    return _SESSION_PKI[0]


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
        out[username] = signing_identity.create_pkcs12_identity(
            sig_pki.p12(who), PASSPHRASE, owner=users[username], pin=PIN
        )
    out["seal"] = signing_identity.create_pkcs12_identity(
        sig_pki.p12("seal"), PASSPHRASE, agency_seal=True, pin=PIN
    )
    signing_verify.add_trust_root(sig_pki.demo.ca.cert_pem)
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
        signing_run.attach_pdf(doc, pdf or director_pdf, "quyet-dinh.pdf", users["chuyenvien"])
        engine.transition(doc.pk, "submit", users["chuyenvien"])
        if state == "signing":
            engine.transition(doc.pk, "circuit_approve", users["truongphong"])
        doc = Document.objects.get(pk=doc.pk)
        assert doc.state == state
        return doc

    return make


def pdf_of(doc: Document) -> bytes:
    doc.reload()
    return storage.read_file(doc.current_pdf.file_id)


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
    results = signing_verify.verification_for(doc)
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
    with pytest.raises(signing_identity.InvalidSigningCode):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, "999999")
    with pytest.raises(signing_identity.SigningCodeRequired):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, "")
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 1
    assert SignatureRecord.objects.count() == 0
    assert SigningIdentity.objects.get(pk=identities["giamdoc"].pk).pin_failures == 1


def test_pin_locks_after_repeated_failures(awaiting, users, identities):
    doc = awaiting("signing")
    for _ in range(signing_identity.PIN_MAX_FAILURES):
        with pytest.raises(signing_identity.InvalidSigningCode):
            signature.start_signing(doc, users["giamdoc"], "sign", {}, "111111")
    with pytest.raises(signing_identity.InvalidSigningCode, match="tạm bị khóa"):
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
    with pytest.raises(signing_identity.InvalidSigningCode):
        signature.start_signing(other, director, "sign", {}, code)  # replayed


def test_no_identity_or_expired_certificate_is_refused_at_once(awaiting, users, sig_pki):
    doc = awaiting("signing")
    with pytest.raises(signing_identity.SigningRefused, match="chưa có chứng thư số"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    signing_identity.create_pkcs12_identity(
        sig_pki.demo.expired.pkcs12(PASSPHRASE.encode()),
        PASSPHRASE,
        owner=users["giamdoc"],
        pin=PIN,
        check_dates=False,
    )
    with pytest.raises(signing_identity.SigningRefused, match="đã hết hạn"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)


def test_upload_refuses_expired_mismatched_and_wrong_passphrase(users, sig_pki):
    demo = sig_pki.demo
    with pytest.raises(signing_identity.SigningRefused, match="hết hạn"):
        signing_identity.create_pkcs12_identity(
            demo.expired.pkcs12(PASSPHRASE.encode()), PASSPHRASE, owner=users["giamdoc"]
        )
    with pytest.raises(signing_identity.SigningRefused, match="không khớp"):
        signing_identity.create_pkcs12_identity(
            demo.mismatched_pkcs12(PASSPHRASE.encode()), PASSPHRASE, owner=users["giamdoc"]
        )
    with pytest.raises(signing_identity.SigningRefused, match="Mật khẩu"):
        signing_identity.create_pkcs12_identity(
            sig_pki.p12("leader"), "sai", owner=users["giamdoc"]
        )
    assert SigningIdentity.objects.count() == 0


def test_key_material_is_encrypted_at_rest(users, sig_pki, app):
    identity = signing_identity.create_pkcs12_identity(
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
            signing_identity.load_identity(identity)
    finally:
        app.config["MASTER_KEY"] = saved
    assert signing_identity.load_identity(identity).cert_info.common_name == "Nguyễn Văn An"


# The whole chain and delegation ------------------------------------------------------------


@pytest.fixture(scope="session")
def nss_db(sig_pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting the test CA, for poppler's pdfsig."""
    if shutil.which("certutil") is None or shutil.which("pdfsig") is None:
        pytest.fail("certutil (libnss3-tools) and pdfsig (poppler-utils) are required")
    directory = tmp_path_factory.mktemp("nss-signature")
    (directory / "ca.pem").write_bytes(sig_pki.demo.ca.cert_pem)
    db = f"sql:{directory}"
    subprocess.run(["certutil", "-N", "--empty-password", "-d", db], check=True)
    subprocess.run(
        ["certutil", "-A", "-n", "ca", "-t", "CT,C,C", "-i", str(directory / "ca.pem"), "-d", db],
        check=True,
    )
    return db


def pdfsig(data: bytes, nss: str, tmp_path) -> list[dict[str, str]]:
    path = tmp_path / "signed.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdfsig", "-nssdir", nss, str(path)], capture_output=True, text=True, check=False
    ).stdout
    results: list[dict[str, str]] = []
    for line in out.splitlines():
        if re.match(r"^Signature #\d+:", line):
            results.append({})
        elif results and ":" in line:
            key, _, value = line.strip(" -").partition(": ")
            results[-1][key] = value
    return results


def test_initial_sign_and_seal_validate_with_pyhanko_and_pdfsig(
    awaiting, users, identities, run_jobs, nss_db, tmp_path
):
    doc = awaiting("review")
    signature.start_signing(doc, users["truongphong"], "circuit_approve", {}, PIN)
    run_jobs()
    doc.reload()
    assert doc.state == "signing", SignatureRecord.objects.first().error
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    doc.reload()
    assert doc.state == "sealing"
    job = signature.start_signing(doc, users["vanthu"], "seal", {}, PIN)
    run_jobs()
    job.refresh()
    doc.reload()
    assert doc.state == "issued", job.meta
    assert [r.kind for r in doc.revisions] == ["upload", "initialed", "signed", "sealed"]
    assert [r.source_rev for r in doc.revisions] == [None, 1, 2, 3]
    records = list(SignatureRecord.objects.order_by("signed_at"))
    assert [r.kind for r in records] == ["initial", "sign", "seal"]
    assert [r.signer.username for r in records] == ["truongphong", "giamdoc", "vanthu"]
    assert records[2].cert_common_name == "Sở Nội vụ tỉnh Demo"
    data = pdf_of(doc)
    results = signing_verify.verification_for(doc)
    assert [r["signer"] for r in results] == [
        "Lê Văn Cường",
        "Nguyễn Văn An",
        "Sở Nội vụ tỉnh Demo",
    ]
    assert all(r["intact"] and r["valid"] and r["trusted"] and r["ok"] for r in results), results
    assert [r["pades_level"] for r in results] == ["B-B", "B-B", "B-B"]
    assert results[-1]["coverage"] == "entire_file"
    assert [r["record"]["kind"] for r in results] == ["initial", "sign", "seal"]
    checked = pdfsig(data, nss_db, tmp_path)
    assert len(checked) == 3
    for result in checked:
        assert result["Signature Validation"] == "Signature is Valid.", result
        assert result["Certificate Validation"] == "Certificate is Trusted.", result
    # the seal overlaps the left third of the director's signature box
    widgets = {n: rect for n, _, rect, _ in signature_widgets(open_pdf(data).prev)}
    sign_box, seal_box = widgets[records[1].field_name], widgets[records[2].field_name]
    assert seal_box[0] < sign_box[0] < seal_box[2] < sign_box[2]
    # a one-byte tamper is reported by both validators
    at = data.index(b"stream", 1000) + 40
    tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    assert not any(r["intact"] for r in signing_verify.verify_bytes(tampered)[:1])
    assert any(
        r["Signature Validation"] != "Signature is Valid."
        for r in pdfsig(tampered, nss_db, tmp_path)
    )


def test_deputy_with_a_standing_sign_right_signs_as_kt(
    awaiting, users, identities, run_jobs, tmp_path
):
    director, deputy = users["giamdoc"], users["phogiamdoc"]
    Delegation(
        principal=director,
        delegate=deputy,
        kind="deputy",
        scopes=["sign"],
        starts_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    ).save()
    doc = awaiting("signing")
    signature.start_signing(doc, deputy, "sign", {}, PIN)
    run_jobs()
    doc.reload()
    assert doc.state == "sealing"
    assert doc.history[-1].actor_name == "Trần Thị Bình"
    assert doc.history[-1].on_behalf_of_name == "Nguyễn Văn An"
    found = SignatureRecord.objects.get()
    assert found.signer == deputy and found.on_behalf_of == director and found.authority == "KT."
    assert found.cert_common_name == "Trần Thị Bình"
    text = pdftotext(pdf_of(doc), tmp_path)
    assert "KT. GIÁM ĐỐC" in text and "PHÓ GIÁM ĐỐC" in text and "Trần Thị Bình" in text


def test_time_limited_delegation_signs_as_tuq(awaiting, users, identities):
    director, deputy = users["giamdoc"], users["phogiamdoc"]
    now = dt.datetime.now(dt.UTC)
    delegation = Delegation(
        principal=director,
        delegate=deputy,
        scopes=["sign"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=1),
    ).save()
    doc = awaiting("signing")
    acting = signature.acting_for(doc, "sign", deputy)
    block = signing_appearance.signature_block(doc, acting)
    assert (block.prefix, block.authority, block.title, block.name) == (
        "TUQ.",
        "TUQ. GIÁM ĐỐC",
        "PHÓ GIÁM ĐỐC",
        "Trần Thị Bình",
    )
    assert delegation.kind == "delegation"


def test_revoked_delegation_at_signing_time_leaves_the_document(
    awaiting, users, identities, run_jobs
):
    director, deputy = users["giamdoc"], users["phogiamdoc"]
    delegation = Delegation(
        principal=director,
        delegate=deputy,
        kind="deputy",
        scopes=["sign"],
        starts_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    ).save()
    doc = awaiting("signing")
    job = signature.start_signing(doc, deputy, "sign", {}, PIN)
    delegation.update(set__revoked_at=dt.datetime.now(dt.UTC))
    run_jobs()
    job.refresh()
    assert job.get_status() == "failed"
    assert "bị thu hồi" in job.meta["error"]
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 1
    found = SignatureRecord.objects.get()
    assert found.status == "failed" and found.error_code == "delegation_revoked"


# Crashes, changes and bad files -------------------------------------------------------------


def requeue_retry(job) -> None:
    """Put a job RQ scheduled for a retry back in its queue now (no scheduler in tests)."""
    from jobs import get_queue

    queue = get_queue("signing")
    assert job.id in queue.scheduled_job_registry.get_job_ids()
    queue.scheduled_job_registry.requeue(job)


@pytest.mark.parametrize("crash", ["after_store", "after_transition"])
def test_a_killed_worker_retried_signs_exactly_once(
    crash, awaiting, users, identities, run_jobs, monkeypatch
):
    doc = awaiting("signing")
    if crash == "after_store":
        target, original = signing_run, signing_run._complete
        name = "_complete"
    else:
        target, original = engine, engine.transition
        name = "transition"

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(target, name, original)
        if crash == "after_transition":
            original(*args, **kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(target, name, crash_once)
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    job.refresh()
    assert job.get_status() == "scheduled"  # RQ retries with backoff
    requeue_retry(job)
    run_jobs()
    job.refresh()
    assert job.get_status() == "finished", job.meta
    doc.reload()
    assert doc.state == "sealing"
    assert [r.kind for r in doc.revisions] == ["upload", "signed"]
    assert sum(1 for h in doc.history if h.action == "sign") == 1
    found = SignatureRecord.objects.get()
    assert found.status == "done" and found.signed_revision == 2
    assert found.attempts == (2 if crash == "after_store" else 1)
    assert signed_fields(pdf_of(doc)) == [found.field_name]


def test_a_pdf_changed_after_the_initial_is_refused(
    awaiting, users, identities, run_jobs, director_pdf
):
    doc = awaiting("review")
    signature.start_signing(doc, users["truongphong"], "circuit_approve", {}, PIN)
    run_jobs()
    doc.reload()
    assert doc.state == "signing"
    signing_run.attach_pdf(doc, director_pdf, "quyet-dinh-sua.pdf", users["chuyenvien"])
    with pytest.raises(signing_identity.SigningRefused, match="đã bị thay đổi sau khi ký nháy"):
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 3


def test_stored_bytes_tampered_after_the_initial_fail_the_job(
    awaiting, users, identities, run_jobs
):
    doc = awaiting("review")
    signature.start_signing(doc, users["truongphong"], "circuit_approve", {}, PIN)
    run_jobs()
    doc.reload()
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    data = pdf_of(doc)
    at = data.index(b"stream", 1000) + 40
    tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    # someone edits the stored file behind the application's back (hash recomputed too)
    fresh = signing_run._described(tampered, "quyet-dinh.pdf", None)
    Document.objects(pk=doc.pk).update_one(
        set__revisions__1__file_id=fresh["file_id"], set__revisions__1__sha256=fresh["sha256"]
    )
    run_jobs()
    job.refresh()
    assert job.get_status() == "failed"
    assert "không còn khớp" in job.meta["error"] or "thay đổi" in job.meta["error"]
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 2


def test_encrypted_or_damaged_pdf_is_refused(awaiting, users, identities, run_jobs, director_pdf):
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(director_pdf)))
    writer.encrypt("secret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(SigningError, match="mã hóa"):
        awaiting("signing", pdf=buffer.getvalue())
    doc = awaiting("signing")
    broken = signing_run._described(b"%PDF-1.7\n garbage", "x.pdf", None)
    Document.objects(pk=doc.pk).update_one(
        set__revisions__0__file_id=broken["file_id"], set__revisions__0__sha256=broken["sha256"]
    )
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    job.refresh()
    assert job.get_status() == "failed" and "PDF" in job.meta["error"]
    assert Document.objects.get(pk=doc.pk).state == "signing"


def test_seal_needs_the_clerk_right_and_a_leader_signature(awaiting, users, identities, run_jobs):
    doc = awaiting("signing")
    with pytest.raises(Forbidden):
        signature.start_signing(doc, users["vanthu"], "seal", {}, PIN)  # wrong state
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    doc.reload()
    with pytest.raises(ValidationFailed, match="đóng dấu"):
        engine.transition(doc.pk, "seal", users["vanthu"])  # no seal yet
    with pytest.raises(Forbidden):
        signature.start_signing(doc, users["chuyenvien"], "seal", {}, PIN)


# Batch ---------------------------------------------------------------------------------------


def test_batch_signs_the_rest_when_one_fails(awaiting, users, identities, run_jobs):
    docs = [awaiting("signing") for _ in range(3)]
    other = awaiting("signing")
    engine.transition(other.pk, "return_to_drafter", users["giamdoc"], {"reason": "Sửa"})
    # one document's stored file is damaged behind the application's back
    broken = signing_run._described(b"%PDF-1.7\n garbage", "x.pdf", None)
    Document.objects(pk=docs[1].pk).update_one(
        set__revisions__0__file_id=broken["file_id"], set__revisions__0__sha256=broken["sha256"]
    )
    ids = [str(d.pk) for d in docs] + [str(other.pk)]
    job = signature.start_batch_signing(users["giamdoc"], ids, PIN)
    assert job.origin == "signing" and SigningAuthorization.objects.count() == 1
    run_jobs()
    job.refresh()
    assert job.get_status() == "finished"
    result = job.return_value()
    assert result["total"] == 4
    assert sorted(result["signed"]) == sorted([str(docs[0].pk), str(docs[2].pk)])
    failed = {f["document"]: f["error"] for f in result["failed"]}
    assert set(failed) == {str(docs[1].pk), str(other.pk)}
    assert "PDF" in failed[str(docs[1].pk)]
    assert "không chờ bạn ký" in failed[str(other.pk)]
    assert job.meta["progress"]["done"] == 4 and job.meta["progress"]["total"] == 4
    states = [Document.objects.get(pk=d.pk).state for d in docs]
    assert states == ["sealing", "signing", "sealing"]


def test_batch_limits(users, identities):
    with pytest.raises(ValidationFailed, match="tối đa 50"):
        signature.start_batch_signing(users["giamdoc"], [str(i) for i in range(51)], PIN)
    with pytest.raises(ValidationFailed, match="ít nhất một"):
        signature.start_batch_signing(users["giamdoc"], [], PIN)


# Verification CLI and the demo -----------------------------------------------------------


def test_cli_verify_prints_json_and_exit_codes(
    runner, awaiting, users, identities, run_jobs, tmp_path
):
    import json

    doc = awaiting("signing")
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    data = pdf_of(doc)
    good = tmp_path / "signed.pdf"
    good.write_bytes(data)
    result = runner.invoke(args=["signing", "verify", str(good), "--json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert entry["signer"] == "Nguyễn Văn An" and entry["trusted"] and entry["intact"]
    assert entry["coverage"] == "entire_file" and entry["pades_level"] == "B-B"
    text = runner.invoke(args=["signing", "verify", str(good)])
    assert "Chữ ký hợp lệ và tin cậy." in text.output
    at = data.index(b"stream", 1000) + 40
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    tampered = runner.invoke(args=["signing", "verify", str(bad), "--json"])
    assert tampered.exit_code == 1 and json.loads(tampered.output)[0]["intact"] is False
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"junk")
    assert runner.invoke(args=["signing", "verify", str(junk), "--json"]).exit_code == 2


def test_demo_seed_signs_an_issued_document(make_document, users, monkeypatch):
    from models.role import Role
    from models.signature import TrustRoot

    signing_demo.seed_demo_signing()
    signing_demo.seed_demo_signing()  # idempotent
    assert SigningIdentity.objects.count() == 3
    assert SigningIdentity.objects.agency().get().seal_image
    assert TrustRoot.objects.count() == 1
    assert "signing.manage" in Role.objects.get(code="quan_tri").permissions
    director = User.objects.get(username="giamdoc")
    assert director.signature_image and director.initial_image
    doc = make_document(
        "outgoing",
        "chuyenvien",
        type_name="Quyết định",
        signer=users["giamdoc"],
        signer_title="Giám đốc",
        signer_name="Nguyễn Văn An",
        notation="15/QĐ-SCT",
    )
    doc = signing_demo.sign_demo_document(doc)
    assert [r.kind for r in doc.revisions] == ["upload", "signed", "sealed"]
    results = signing_verify.verification_for(doc)
    assert [r["signer"] for r in results] == ["Nguyễn Văn An", "Sở Công Thương tỉnh Đồng Nai"]
    assert all(r["ok"] and r["trusted"] for r in results), results
    assert signing_identity.identity_for(users["giamdoc"], "sign").has_signing_pin
    authorization = signing_identity.authorize(
        users["giamdoc"],
        signing_demo.DEMO_SIGNING_PIN,
        identity=signing_identity.identity_for(users["giamdoc"], "sign"),
    )
    assert authorization.method == "pin"


def test_seal_also_signs_pdf_attachments_top_right(
    awaiting, users, identities, run_jobs, director_pdf, tmp_path
):
    from models.document import StoredFile

    doc = awaiting("signing", notation="15/QĐ-SCT")
    appendix = make_sample_pdf(SampleDocument(doc_type="PHỤ LỤC", authority=None, title=""))
    Document.objects(pk=doc.pk).update_one(
        push__attachments=StoredFile(**signing_run._described(appendix, "phu-luc.pdf", None))
    )
    signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    job = signature.start_signing(Document.objects.get(pk=doc.pk), users["vanthu"], "seal", {}, PIN)
    run_jobs()
    job.refresh()
    doc.reload()
    assert doc.state == "issued", job.meta
    attachment = doc.attachments[0]
    assert attachment.filename == "phu-luc.pdf"
    assert attachment.sha256 != hashlib.sha256(appendix).hexdigest()
    data = storage.read_file(attachment.file_id)
    assert data.startswith(appendix)
    [(_, page, rect, signed)] = signature_widgets(open_pdf(data).prev)
    assert signed and page == 0 and rect[0] > 300 and rect[1] > 700  # top right of page 1
    [check] = signing_verify.verify_bytes(data)
    assert check["signer"] == "Sở Nội vụ tỉnh Demo" and check["intact"] and check["valid"]
    text = pdftotext(data, tmp_path)
    assert "15/QĐ-SCT" in text and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", text)
    kinds = sorted(r.kind for r in SignatureRecord.objects)
    assert kinds == ["attachment", "seal", "sign"]
    assert SignatureRecord.objects.get(kind="attachment").attachment_name == "phu-luc.pdf"
