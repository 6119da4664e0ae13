"""Signing jobs on the `signing` queue: one document, or a batch under one authorization.

Payloads are ids only (a signature record, an authorization); the signer's code was checked
in the web request and is never here. A document that cannot be signed fails with its
Vietnamese message in ``job.meta["error"]`` and is not retried; anything unexpected (a
worker killed, the database away) raises so that RQ retries, and the retry finishes the
work without signing twice.
"""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from jobs import report_progress


class SigningJobFailed(Exception):
    """The document was left as it was; the user sees job.meta["error"]."""


def _progress(done: int, total: int, signed: int, failures: list[dict[str, Any]]) -> None:
    report_progress(done, total, signed=signed, failed=len(failures))
    job = get_current_job()
    if job is not None:
        job.meta["failures"] = failures
        job.save_meta()


def _give_up(message: str, code: str | None) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["error"] = message
        job.meta["error_code"] = code
        job.retries_left = 0  # a refusal (wrong code, expired certificate...) will not heal
        job.save_meta()
    raise SigningJobFailed(message)


def sign_document(record_id: str, authorization_id: str) -> dict[str, Any]:
    """Sign one document, store the revision and record, then perform its transition."""
    from workflows.signing_run import run_signing

    result = run_signing([record_id], authorization_id, progress=_progress)
    if result["failed"]:
        failure = result["failed"][0]
        _give_up(failure["error"], failure.get("code"))
    return result


def sign_batch(
    record_ids: list[str], authorization_id: str, rejected: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sign several documents; failures are listed per document and the rest still sign."""
    from workflows.signing_run import run_signing

    return run_signing(record_ids, authorization_id, rejected=rejected, progress=_progress)
