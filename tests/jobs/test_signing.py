"""Signing jobs: ids-only payloads, no retry on refusals, remote (CSC) confirmation in the job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs import get_queue, redis_connection
from models.document import Document
from models.signature import SignatureRecord
from tests.workflows import test_signature as shared
from tests.workflows.signing.csc_server import TOKEN, CscState, serve
from workflows import signature, signing_identity, signing_verify

# fixtures shared with the workflow tests
awaiting, director_pdf, identities = shared.awaiting, shared.director_pdf, shared.identities
fast_pin_hash, sealed_flow, sig_pki = shared.fast_pin_hash, shared.sealed_flow, shared.sig_pki
PIN = shared.PIN


def test_payload_holds_ids_only_and_no_secret(awaiting, users, identities):
    doc = awaiting("signing")
    job = signature.start_signing(doc, users["giamdoc"], "sign", {"comment": "Ký"}, PIN)
    record_id, authorization_id = job.args
    assert SignatureRecord.objects.get(pk=record_id).inputs == {"comment": "Ký"}
    conn = redis_connection()
    stored = b"".join(
        value
        for key in conn.keys("rq:job:*")
        if conn.type(key) == b"hash"
        for value in conn.hgetall(key).values()
    )
    assert PIN.encode() not in stored
    assert shared.PASSPHRASE.encode() not in stored
    assert job.meta["owner_id"] == str(users["giamdoc"].pk)
    assert authorization_id and job.timeout and job.retries_left == 3


def test_a_refusal_is_not_retried(awaiting, users, identities, run_jobs):
    doc = awaiting("signing")
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    identities["giamdoc"].update(set__active=False)  # withdrawn before the worker runs
    run_jobs()
    job.refresh()
    assert job.get_status() == "failed"  # not "scheduled": a refusal does not heal by waiting
    assert "chưa có chứng thư số" in job.meta["error"]
    assert get_queue("signing").scheduled_job_registry.count == 0
    assert Document.objects.get(pk=doc.pk).state == "signing"


def test_failed_job_can_be_signed_again_after_the_cause_is_fixed(
    awaiting, users, identities, run_jobs
):
    doc = awaiting("signing")
    first = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    identities["giamdoc"].update(set__active=False)
    run_jobs()
    identities["giamdoc"].update(set__active=True)
    second = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    assert second.id == first.id
    run_jobs()
    second.refresh()
    assert second.get_status() == "finished"
    assert Document.objects.get(pk=doc.pk).state == "sealing"
    assert SignatureRecord.objects.get().status == "done"


# Remote signing (Cloud Signature Consortium API) ------------------------------------------


@pytest.fixture(scope="module")
def csc(sig_pki) -> Iterator[tuple[str, CscState]]:
    """A CSC service on loopback backed by the director's test key."""
    with serve(sig_pki.demo.leader, sig_pki.demo.tsa) as running:
        yield running


@pytest.fixture
def remote_director(csc, users, identities, app) -> Any:
    """Give the director a remote-signing credential instead of the uploaded file."""
    base, _ = csc
    identities["giamdoc"].update(set__active=False)
    saved = app.config.get("SIGNING_CSC_POLL_SECONDS")
    app.config["SIGNING_CSC_POLL_SECONDS"] = 0.05

    def make(mode: str, timeout: float = 3.0) -> Any:
        return signing_identity.create_csc_identity(
            f"{base}/csc/v2",
            f"leader-{mode}",
            TOKEN,
            owner=users["giamdoc"],
            confirm_timeout=timeout,
            pin=PIN,
        )

    yield make
    app.config["SIGNING_CSC_POLL_SECONDS"] = saved


def test_remote_signature_after_confirmation(awaiting, users, remote_director, run_jobs, csc):
    remote_director("slow")
    doc = awaiting("signing")
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    job.refresh()
    assert job.get_status() == "finished", job.meta
    doc.reload()
    assert doc.state == "sealing"
    found = SignatureRecord.objects.get()
    assert found.backend == "csc" and found.cert_common_name == "Nguyễn Văn An"
    [result] = signing_verify.verification_for(doc)
    assert result["intact"] and result["valid"] and result["trusted"]
    assert csc[1].labels[-1].startswith("Ký ban hành")


@pytest.mark.parametrize(
    ("mode", "message"),
    [("refuse", "từ chối"), ("never", "Hết")],
)
def test_remote_refusal_or_timeout_leaves_the_document(
    mode, message, awaiting, users, remote_director, run_jobs
):
    remote_director(mode, timeout=1.0)
    doc = awaiting("signing")
    job = signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
    run_jobs()
    job.refresh()
    assert job.get_status() == "failed"
    assert message in job.meta["error"]
    doc.reload()
    assert doc.state == "signing" and len(doc.revisions) == 1
    assert SignatureRecord.objects.get().status == "failed"


def test_remote_batch_needs_one_confirmation(awaiting, users, remote_director, run_jobs, csc):
    remote_director("immediate")
    docs = [awaiting("signing") for _ in range(3)]
    seen = len(csc[1].labels)
    job = signature.start_batch_signing(users["giamdoc"], [str(d.pk) for d in docs], PIN)
    run_jobs()
    job.refresh()
    assert len(job.return_value()["signed"]) == 3
    assert len(csc[1].labels) == seen + 1  # one authorization on the phone for the batch
    assert csc[1].labels[-1].endswith("(+2 văn bản)")
    assert {Document.objects.get(pk=d.pk).state for d in docs} == {"sealing"}


def test_timestamp_url_gives_pades_b_t(awaiting, users, identities, run_jobs, csc, app):
    base, _ = csc
    app.config["SIGNING_TIMESTAMP_URL"] = f"{base}/tsa"
    try:
        doc = awaiting("signing")
        signature.start_signing(doc, users["giamdoc"], "sign", {}, PIN)
        run_jobs()
    finally:
        app.config.pop("SIGNING_TIMESTAMP_URL")
    doc.reload()
    [result] = signing_verify.verification_for(doc)
    assert result["pades_level"] == "B-T" and result["timestamp_time"]
    assert result["intact"] and result["valid"]
