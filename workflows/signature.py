"""Signatures in a document's workflow: what a step needs, starting one, the workflow actions.

Flow: a view calls ``start_signing`` (or ``start_batch_signing``) in the web request; it checks
visibility and the engine's right, verifies the signer's TOTP code or signing PIN
(``signing_identity.authorize``), records a ``SigningAuthorization`` (never the code) and a
queued ``SignatureRecord``, and enqueues ``jobs.signing.sign_document`` on the ``signing``
queue. The job calls ``signing_run.run_signing``: it signs the current PDF revision, stores the
result as a new revision, completes the record and only then performs the workflow transition.
Every step can run again after a crash: the PDF field name is derived from the record key, so
a retried job finds its own signature instead of signing twice.

Importing this module registers the ``apply_seal`` action and makes ``request_signature``
require a signature: the app (through its views) and the signing worker import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rq.job import Job

from models.audit import record, utcnow
from models.document import CircuitStep, Document, FileRevision
from models.signature import SignatureRecord, SigningAuthorization
from models.user import User
from workflows import actions
from workflows.errors import DomainError, Forbidden, ValidationFailed
from workflows.rules import Acting, principals_of, resolve_acting
from workflows.signing_identity import SigningRefused, authorize, identity_for

BATCH_LIMIT = 50
SIGNING_QUEUE = "signing"
REASONS = {
    "initial": "Ký nháy",
    "sign": "Ký ban hành",
    "seal": "Đóng dấu (chữ ký số cơ quan)",
    "attachment": "Ký tệp đính kèm",
}


# What a transition needs ---------------------------------------------------------------------


def active_steps(doc: Document, user: User | None) -> list[CircuitStep]:
    """Return the running circuit's active steps awaiting `user` (or a principal), else all."""
    if doc.circuit is None or doc.circuit.status != "running":
        return []
    active = [s for s in doc.circuit.steps if s.status == "active"]
    if user is None:
        return active
    ids = set(principals_of(user))
    mine = [s for s in active if ids & set(s.user_ids) and not ids & set(s.done_by)]
    return mine or active


def signing_kind_for(doc: Document, transition_code: str, user: User | None = None) -> str | None:
    """Return the signature a transition needs: "initial", "sign", "seal" or None.

    A circuit approval on an active initial step needs an initial, on a signature step a
    signature; a transition running `request_signature` needs a signature, `apply_seal` the
    agency seal. With `user`, only the circuit steps naming them (or their principals) count.
    """
    from workflows.engine import CIRCUIT_APPROVE
    from workflows.workflow_definition import version_spec

    if transition_code == CIRCUIT_APPROVE:
        kinds = {s.kind for s in active_steps(doc, user) if s.digital or s.kind == "signature"}
        if "signature" in kinds:
            return "sign"
        return "initial" if "initial" in kinds else None
    if not doc.workflow_code or not doc.workflow_version:
        return None
    spec = version_spec(doc.workflow_code, doc.workflow_version)
    t = next((x for x in spec.get("transitions") or [] if x.get("code") == transition_code), None)
    ids = {a.get("id") for a in (t or {}).get("actions") or [] if isinstance(a, dict)}
    if "apply_seal" in ids:
        return "seal"
    return "sign" if "request_signature" in ids else None


def signing_transition_for(
    doc: Document, user: User, kinds: Iterable[str] = ("initial", "sign", "seal")
) -> tuple[str, str] | None:
    """Return (transition code, kind) of the first signing step `user` may take now."""
    from workflows.engine import available_transitions

    wanted = set(kinds)
    for available in available_transitions(doc, user):
        kind = signing_kind_for(doc, available.code, user)
        if kind in wanted:
            return available.code, kind
    return None


@dataclass(frozen=True)
class AwaitingSignature:
    """A document waiting for the user's initial, signature or the agency seal."""

    document: Document
    transition_code: str
    kind: str
    on_behalf_of: str | None


def awaiting_signature(
    user: User, kinds: Iterable[str] = ("initial", "sign", "seal"), limit: int = 200
) -> list[AwaitingSignature]:
    """List the documents `user` (or someone who delegated to them) must sign now."""
    from workflows.engine import available_transitions

    wanted = set(kinds)
    out = []
    docs = Document.objects.awaiting(principals_of(user)).order_by("due_at", "-created_at")
    for doc in docs.limit(limit):
        for available in available_transitions(doc, user):
            kind = signing_kind_for(doc, available.code, user)
            if kind in wanted and doc.current_pdf is not None:
                out.append(AwaitingSignature(doc, available.code, kind, available.on_behalf_of))
                break
    return out


def record_key(doc_id: Any, revision: int, kind: str, signer_id: Any) -> str:
    """Return the deterministic key (and job id) of one signature: a double click signs once."""
    return f"sign-{doc_id}-{revision}-{kind}-{signer_id}"


def field_name_for(kind: str, signer_id: Any, revision: int) -> str:
    """Return the PDF signature field of one signature (the same on every retry)."""
    return f"{kind}-{signer_id}-r{revision}"


def acting_for(doc: Document, code: str, actor: User) -> Acting:
    """Return how `actor` may take `code` now (own right or delegation); refuse otherwise."""
    from workflows.engine import _spec, _transitions, available_transitions

    if code not in {a.code for a in available_transitions(doc, actor)}:
        raise Forbidden(
            "Bạn không có quyền ký văn bản này ở bước hiện tại, hoặc văn bản đã chuyển bước.",
            code="transition_not_allowed",
        )
    t = next(x for x in _transitions(doc, _spec(doc)) if x["code"] == code)
    acting = resolve_acting(t.get("who") or [], actor, doc, t.get("scope", "process"))
    assert acting is not None  # available_transitions resolved it a moment ago
    return acting


def current_pdf(doc: Document) -> FileRevision:
    """Return the document's current PDF revision; refuse when it has none."""
    pdf = doc.current_pdf
    if pdf is None:
        raise ValidationFailed("Văn bản chưa có tệp PDF để ký.")
    return pdf


def _ancestors(doc: Document, rev: int) -> set[int]:
    by_rev = {r.rev: r for r in doc.revisions}
    seen: set[int] = set()
    current: int | None = rev
    while current is not None and current not in seen:
        seen.add(current)
        found = by_rev.get(current)
        current = found.source_rev if found is not None else None
    return seen


def check_lineage(doc: Document) -> None:
    """Refuse when the current PDF no longer builds on the last signature of this round."""
    pdf = current_pdf(doc)
    done = SignatureRecord.objects(document=doc, status="done", kind__ne="attachment")
    if doc.circuit is not None and doc.circuit.started_at is not None:
        # signing times are kept to the second
        done = done.filter(signed_at__gte=doc.circuit.started_at.replace(microsecond=0))
    last = done.order_by("-signed_at").first()
    if last is not None and last.signed_revision not in _ancestors(doc, pdf.rev):
        raise SigningRefused(
            "Tệp văn bản đã bị thay đổi sau khi ký nháy/ký (tệp hiện tại không chứa chữ ký "
            "trước đó). Vui lòng trình ký lại.",
            code="document_modified",
        )


# Starting ---------------------------------------------------------------------------------


def _clean_inputs(inputs: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the transition inputs a job may carry: short texts, never a code."""
    out: dict[str, Any] = {}
    for key, value in (inputs or {}).items():
        if key in ("signing_code", "code", "pin", "otp") or value in (None, ""):
            continue
        if isinstance(value, str | int | float | bool):
            out[key] = value[:5000] if isinstance(value, str) else value
    return out


def _in_flight(job_id: str) -> Job | None:
    from jobs import fetch_job

    job = fetch_job(job_id)
    if job is None:
        return None
    status = job.get_status(refresh=True)
    return job if status in ("queued", "started", "deferred", "scheduled") else None


@dataclass
class _Ready:
    doc: Document
    code: str
    kind: str
    acting: Acting
    pdf: FileRevision


def _prepare_start(doc_id: Any, user: User, code: str | None, kinds: Iterable[str]) -> _Ready:
    from workflows.document import get_for

    doc = get_for(user, doc_id, log_view=False)
    if code is None:
        found = signing_transition_for(doc, user, kinds)
        if found is None:
            raise SigningRefused("Văn bản không chờ bạn ký.", code="not_awaiting_signature")
        code, kind = found
    else:
        kind_or_none = signing_kind_for(doc, code, user)
        if kind_or_none is None:
            raise ValidationFailed("Bước xử lý này không cần ký số.")
        kind = kind_or_none
    acting = acting_for(doc, code, user)
    pdf = current_pdf(doc)
    check_lineage(doc)
    return _Ready(doc, code, kind, acting, pdf)


def _queue_record(
    ready: _Ready, user: User, authorization: SigningAuthorization, inputs: dict[str, Any]
) -> SignatureRecord:
    doc, kind = ready.doc, ready.kind
    rev = ready.pdf.rev
    key = record_key(doc.pk, rev, kind, user.pk)
    existing = SignatureRecord.objects(key=key).first()
    if existing is not None and existing.status == "done":
        existing.update(set__authorization=authorization, set__updated_at=utcnow())
        existing.reload()
        return existing
    found = existing or SignatureRecord(key=key)
    found.document = doc
    found.revision = rev
    found.kind = kind
    found.signer = user
    found.on_behalf_of = ready.acting.principal if ready.acting.on_behalf else None
    found.transition_code = ready.code
    found.inputs = inputs
    found.authorization = authorization
    found.field_name = field_name_for(kind, user.pk, rev)
    found.status, found.error, found.error_code = "queued", None, None
    found.updated_at = utcnow()
    found.save()
    return found


def start_signing(
    doc: Document | Any,
    user: User,
    transition_code: str | None,
    inputs: dict[str, Any] | None,
    code: str | None,
    *,
    ip: str | None = None,
) -> Job:
    """Authorize and queue one signature; the job signs, then performs the transition.

    `transition_code` None picks the signing step the user may take now. A second call while
    the first job is queued or running returns that job without asking for a new code.
    """
    from jobs import enqueue
    from jobs.signing import sign_document

    doc_id = doc.pk if isinstance(doc, Document) else doc
    ready = _prepare_start(doc_id, user, transition_code, ("initial", "sign", "seal"))
    key = record_key(ready.doc.pk, ready.pdf.rev, ready.kind, user.pk)
    running = _in_flight(key)
    if running is not None:
        return running
    identity = identity_for(user, ready.kind)
    authorization = authorize(
        user, code, identity=identity, document_ids=[str(ready.doc.pk)], ip=ip
    )
    found = _queue_record(ready, user, authorization, _clean_inputs(inputs))
    job = enqueue(
        sign_document,
        str(found.pk),
        str(authorization.pk),
        queue=SIGNING_QUEUE,
        job_id=key,
        owner_id=str(user.pk),
        description=f"{REASONS[ready.kind]}: {ready.doc.subject[:80]}",
        retries=3,
    )
    SignatureRecord.objects(pk=found.pk).update_one(set__job_id=job.id)
    record(
        "signature.requested",
        obj=ready.doc,
        detail={"kind": ready.kind, "transition": ready.code, "job": job.id},
    )
    return job


def start_batch_signing(
    user: User,
    doc_ids: Sequence[Any],
    code: str | None,
    *,
    inputs: dict[str, Any] | None = None,
    ip: str | None = None,
) -> Job:
    """Sign up to 50 documents awaiting `user` with one authorization, in one job.

    Documents that cannot be signed are listed as failures; the rest still sign.
    """
    from jobs import enqueue
    from jobs.signing import sign_batch

    ids = list(dict.fromkeys(str(d) for d in doc_ids if d))
    if not ids:
        raise ValidationFailed("Chọn ít nhất một văn bản để ký.")
    if len(ids) > BATCH_LIMIT:
        raise ValidationFailed(f"Mỗi lần ký tối đa {BATCH_LIMIT} văn bản.")
    ready: list[_Ready] = []
    rejected: list[dict[str, Any]] = []
    for doc_id in ids:
        try:
            item = _prepare_start(doc_id, user, None, ("initial", "sign", "seal"))
        except DomainError as exc:
            rejected.append(
                {"document": doc_id, "subject": _subject(doc_id, user), "error": exc.message}
            )
            continue
        if ready and (item.kind == "seal") != (ready[0].kind == "seal"):
            rejected.append(
                {
                    "document": doc_id,
                    "subject": item.doc.subject[:200],
                    "error": "Ký riêng: văn bản này cần loại chữ ký số khác trong lô.",
                }
            )
            continue
        ready.append(item)
    if not ready:
        reason = rejected[0]["error"] if rejected else ""
        raise SigningRefused(f"Không có văn bản nào ký được. {reason}".strip())
    identity = identity_for(user, ready[0].kind)
    authorization = authorize(
        user, code, identity=identity, document_ids=[str(r.doc.pk) for r in ready], ip=ip
    )
    clean = _clean_inputs(inputs)
    record_ids = [str(_queue_record(r, user, authorization, clean).pk) for r in ready]
    job = enqueue(
        sign_batch,
        record_ids,
        str(authorization.pk),
        rejected,
        queue=SIGNING_QUEUE,
        job_id=f"sign-batch-{authorization.pk}",
        owner_id=str(user.pk),
        description=f"Ký lô {len(ids)} văn bản",
        retries=2,
        timeout=1800,
    )
    SignatureRecord.objects(pk__in=record_ids).update(set__job_id=job.id)
    record("signature.batch_requested", obj=user, detail={"documents": len(ids), "job": job.id})
    return job


def _subject(doc_id: str, user: User) -> str:
    from workflows.document import can_view

    try:
        doc = Document.objects(pk=doc_id).first()
    except Exception:
        return ""
    return doc.subject[:200] if doc is not None and can_view(doc, user) else ""


# Workflow actions ----------------------------------------------------------------------------


def _require_signature(ctx: actions.ActionContext, kind: str) -> None:
    pdf = ctx.doc.current_pdf
    if pdf is None:
        raise ValidationFailed("Văn bản chưa có tệp PDF để ký.")
    found = SignatureRecord.objects(
        document=ctx.doc, kind=kind, signer=ctx.actor, status="done", signed_revision=pdf.rev
    ).first()
    if found is None:
        what = "đóng dấu (chữ ký số cơ quan)" if kind == "seal" else "ký số"
        raise ValidationFailed(
            f"Văn bản chưa được {what} trên phiên bản hiện tại. Vui lòng dùng chức năng ký số.",
            code="signature_required",
        )
    ctx.detail["signature"] = {
        "kind": kind,
        "revision": found.signed_revision,
        "certificate": found.cert_common_name,
        "serial": found.cert_serial,
    }


@actions.register("apply_seal", "Đóng dấu (chữ ký số cơ quan) – cần đã ký số", {})
def _apply_seal(ctx: actions.ActionContext) -> None:
    _require_signature(ctx, "seal")


def _wrap_request_signature() -> None:
    current = actions.REGISTRY["request_signature"]
    if getattr(current.run, "_requires_signature", False):
        return
    original = current.run

    def run(ctx: actions.ActionContext, **params: Any) -> None:
        original(ctx, **params)
        _require_signature(ctx, "sign")

    run._requires_signature = True  # type: ignore[attr-defined]
    actions.REGISTRY["request_signature"] = actions.ActionType(
        current.id, current.label, run, current.params, current.check
    )


_wrap_request_signature()
