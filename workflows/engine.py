"""The workflow engine: one entry point performs a transition, all or nothing."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from mongoengine.errors import SaveConditionError

from models.audit import utcnow
from models.document import Circuit, CircuitStep, Document, HistoryEntry
from models.user import User
from workflows import actions, expression
from workflows.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from workflows.rules import Acting, resolve_acting, users_for
from workflows.workflow_definition import (
    INPUTS,
    REQUIRED_INPUTS,
    STEP_KINDS,
    definition_for,
    version_spec,
)

log = logging.getLogger(__name__)
CIRCUIT_APPROVE, CIRCUIT_REJECT = "circuit_approve", "circuit_reject"
STEP_SCOPE = {"visa": "process", "initial": "initial", "signature": "sign"}


class TransitionNotAllowed(Forbidden):
    code = "transition_not_allowed"
    message = "Bạn không có quyền thực hiện bước này."


class WrongState(Conflict):
    code = "wrong_state"
    message = "Văn bản không còn ở trạng thái cho phép bước này. Vui lòng tải lại trang."


class ReadOnlyDocument(Forbidden):
    code = "read_only"
    message = "Văn bản chuyển đổi từ hệ thống cũ chỉ để tra cứu, không xử lý được."


@dataclass(frozen=True)
class Available:
    code: str
    label: str
    inputs: list[str]
    on_behalf_of: str | None  # principal's name when acting by delegation


def _spec(doc: Document) -> dict[str, Any]:
    if not doc.workflow_code or not doc.workflow_version:
        raise ValidationFailed("Văn bản chưa gắn với quy trình xử lý.")
    return version_spec(doc.workflow_code, doc.workflow_version)


def _state(spec: dict[str, Any], code: str) -> dict[str, Any]:
    for state in spec.get("states") or []:
        if state.get("code") == code:
            return dict(state)
    return {"code": code, "label": code}


def state_label(doc: Document) -> str:
    """Return the Vietnamese label of the document's state."""
    if doc.migrated:
        return doc.status_text or "Dữ liệu chuyển đổi"
    try:
        return str(_state(_spec(doc), doc.state).get("label") or doc.state)
    except DomainError:
        return doc.state


def condition_context(doc: Document) -> dict[str, Any]:
    """The field values a condition may test."""
    steps = doc.circuit.steps if doc.circuit else []
    unit = doc.issuer_unit
    return {
        "direction": doc.direction,
        "doc_type": doc.doc_type.abbreviation if doc.doc_type else "",
        "urgency": doc.urgency or 0,
        "secrecy": doc.secrecy or 0,
        "unit": unit.abbreviation if unit else "",
        "steps_done": sum(1 for s in steps if s.status == "done"),
        "steps_total": len(steps),
        "has_file": doc.current_pdf is not None,
        "pages": doc.pages or 0,
        "open_assignments": sum(1 for a in doc.assignments if a.status == "open"),
        "has_number": doc.number is not None or doc.arrival_number is not None,
    }


# Circuits -----------------------------------------------------------------------------------


def _circuit_template(spec: dict[str, Any], code: str | None) -> dict[str, Any] | None:
    circuits = spec.get("circuits") or []
    if code is None:
        return circuits[0] if circuits else None
    return next((c for c in circuits if c.get("code") == code), None)


def copy_circuit(doc: Document, spec: dict[str, Any], code: str | None) -> None:
    """Copy a circuit template into the document (draft: the drafter may change people)."""
    template = _circuit_template(spec, code)
    if template is None:
        return
    steps = []
    for i, step in enumerate(template.get("steps") or []):
        people: set[str] = set()
        for rule in step.get("who") or []:
            people |= users_for(rule, doc)
        steps.append(
            CircuitStep(
                index=i,
                group=int(step.get("group", i)),
                kind=step["kind"],
                mode=step.get("mode", "all"),
                label=step.get("label") or STEP_KINDS[step["kind"]],
                user_ids=sorted(people),
                reject_to=step.get("reject_to", "previous"),
                position=step.get("position") or {},
                digital=step.get("digital", True) is not False,
            )
        )
    doc.circuit = Circuit(template_code=template.get("code"), status="draft", steps=steps)


def start_circuit(doc: Document, spec: dict[str, Any], code: str | None, now: dt.datetime) -> None:
    """Run the document's circuit from its first group."""
    if doc.circuit is None or (code and doc.circuit.template_code != code):
        copy_circuit(doc, spec, code)
    if doc.circuit is None or not doc.circuit.steps:
        raise ValidationFailed("Quy trình không có luồng trình ký để bắt đầu.")
    empty = [s.label for s in doc.circuit.steps if not s.user_ids]
    if empty:
        raise ValidationFailed("Chưa chọn người cho bước trình ký: " + ", ".join(empty) + ".")
    for step in doc.circuit.steps:
        step.status, step.done_by = "pending", []
    doc.circuit.status = "running"
    doc.circuit.started_at = now
    _activate_next_group(doc)


def _activate_next_group(doc: Document) -> bool:
    """Activate the next pending group of steps; False when none is left."""
    pending = [s for s in doc.circuit.steps if s.status == "pending"]
    if not pending:
        return False
    group = min(s.group for s in pending)
    for step in pending:
        if step.group == group:
            step.status = "active"
    return True


def set_step_people(doc_id: str, index: int, user_ids: list[str], actor: User) -> Document:
    """Let the drafter change who acts on a circuit step before the circuit starts."""
    doc = _load(doc_id)
    if doc.created_by_id != str(actor.pk):
        raise Forbidden("Chỉ người soạn thảo được đổi người ở luồng trình ký.")
    if doc.circuit is None or doc.circuit.status != "draft":
        raise Conflict("Luồng trình ký đã bắt đầu, không đổi người được nữa.")
    step = next((s for s in doc.circuit.steps if s.index == index), None)
    users = list(User.objects(pk__in=user_ids, active=True))
    if step is None or not users or len(users) != len(set(user_ids)):
        raise ValidationFailed("Bước hoặc người được chọn không hợp lệ.")
    old = doc.version
    step.user_ids = [str(u.pk) for u in users]
    doc.history.append(
        HistoryEntry(
            actor_id=str(actor.pk),
            actor_name=actor.full_name,
            action="circuit_people",
            label=f"Đổi người ở bước '{step.label}': {', '.join(u.full_name for u in users)}",
        )
    )
    _save(doc, old, doc.state)
    return doc


def _circuit_transitions(doc: Document, state: dict[str, Any]) -> list[dict[str, Any]]:
    if not state.get("circuit") or doc.circuit is None or doc.circuit.status != "running":
        return []
    active = [s for s in doc.circuit.steps if s.status == "active"]
    kinds = {s.kind for s in active}
    kind = "signature" if "signature" in kinds else ("initial" if "initial" in kinds else "visa")
    approve = {"visa": "Đồng ý (cho ý kiến)", "initial": "Ký nháy", "signature": "Ký duyệt"}[kind]
    return [
        {
            "code": CIRCUIT_APPROVE,
            "label": approve,
            "from": [state["code"]],
            "who": [{"relation": "circuit_step"}],
            "scope": STEP_SCOPE[kind],
            "inputs": ["comment"],
        },
        {
            "code": CIRCUIT_REJECT,
            "label": "Trả lại",
            "from": [state["code"]],
            "who": [{"relation": "circuit_step"}],
            "scope": STEP_SCOPE[kind],
            "inputs": ["reason"],
        },
    ]


def _circuit_move(doc: Document, state: dict[str, Any], code: str, acting: Acting) -> str:
    """Apply an approve/reject to the active steps; return the next state."""
    uid = str(acting.principal.pk)
    mine = [
        s
        for s in doc.circuit.steps
        if s.status == "active" and uid in s.user_ids and uid not in s.done_by
    ]
    if not mine:
        raise TransitionNotAllowed()
    if code == CIRCUIT_REJECT:
        step = mine[0]
        step.status = "rejected"
        if step.reject_to == "previous" and step.group > min(s.group for s in doc.circuit.steps):
            prev_group = max(s.group for s in doc.circuit.steps if s.group < step.group)
            for s in doc.circuit.steps:
                if s.group == prev_group:
                    s.status, s.done_by = "active", []
                elif s.group >= step.group:
                    s.status, s.done_by = "pending", []
            return str(state["code"])
        doc.circuit.status = "draft"  # back to the drafter, who may change people and resubmit
        for s in doc.circuit.steps:
            s.status, s.done_by = "pending", []
        return str(state["on_circuit_reject"])
    for step in mine:
        step.done_by.append(uid)
        if step.mode == "any" or set(step.user_ids) <= set(step.done_by):
            step.status = "done"
    if any(s.status == "active" for s in doc.circuit.steps):
        return str(state["code"])
    if _activate_next_group(doc):
        return str(state["code"])
    doc.circuit.status = "done"
    return str(state["on_circuit_done"])


# Entry points -------------------------------------------------------------------------------


def _load(doc_id: Any) -> Document:
    doc = Document.objects(pk=doc_id).first()
    if doc is None:
        raise NotFound("Không tìm thấy văn bản.")
    return doc


def start(doc: Document, actor: User | None, now: dt.datetime | None = None) -> Document:
    """Attach a new document to the published workflow that applies to it, and save it."""
    from workflows.document import refresh_access

    now = now or utcnow()
    abbr = doc.doc_type.abbreviation if doc.doc_type else None
    definition = definition_for(doc.direction, abbr)
    if definition is None:
        raise ValidationFailed("Chưa có quy trình nào được ban hành cho loại văn bản này.")
    spec = version_spec(definition.code, definition.published_version)
    doc.workflow_code = definition.code
    doc.workflow_version = definition.published_version
    doc.state = spec["initial_state"]
    doc.state_entered_at = now
    if any(s.get("circuit") for s in spec.get("states") or []):
        copy_circuit(doc, spec, None)
    _enter_state(doc, spec, _state(spec, doc.state), now)
    name = actor.full_name if actor else "Hệ thống"
    doc.history.append(
        HistoryEntry(
            at=now,
            actor_id=str(actor.pk) if actor else None,
            actor_name=name,
            action="created",
            label=f"Tạo văn bản ({definition.name}, phiên bản {definition.published_version})",
            to_state=doc.state,
        )
    )
    refresh_access(doc)
    doc.save()
    return doc


def _enter_state(
    doc: Document, spec: dict[str, Any], state: dict[str, Any], now: dt.datetime
) -> None:
    sla = state.get("sla_hours")
    open_deadlines = [
        a.deadline_at for a in doc.assignments if a.status == "open" and a.deadline_at
    ]
    if sla:
        open_deadlines.append(now + dt.timedelta(hours=float(sla)))
    elif doc.deadline_on and not state.get("final"):
        open_deadlines.append(
            dt.datetime.combine(doc.deadline_on, dt.time(17), tzinfo=actions.VN_TZ)
        )
    if state.get("final"):
        doc.closed = True
        doc.due_at = None
    else:
        doc.closed = False
        doc.due_at = min(open_deadlines, key=_aware) if open_deadlines else None
    _refresh_pending(doc, spec, state)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _refresh_pending(doc: Document, spec: dict[str, Any], state: dict[str, Any]) -> None:
    pending: set[str] = set()
    if state.get("final"):
        doc.pending_user_ids = []
        return
    if state.get("circuit") and doc.circuit and doc.circuit.status == "running":
        pending = users_for({"relation": "circuit_step"}, doc)
    else:
        rules = state.get("actors") or [
            rule
            for t in spec.get("transitions") or []
            if state["code"] in (t.get("from") or [])
            for rule in t.get("who") or []
            if "relation" in rule
        ]
        for rule in rules:
            pending |= users_for(rule, doc)
    doc.pending_user_ids = sorted(pending)


def _transitions(doc: Document, spec: dict[str, Any]) -> list[dict[str, Any]]:
    state = _state(spec, doc.state)
    own = [t for t in spec.get("transitions") or [] if doc.state in (t.get("from") or [])]
    return _circuit_transitions(doc, state) + own


def available_transitions(
    doc: Document, user: User, now: dt.datetime | None = None
) -> list[Available]:
    """Return the transitions `user` may take now (in their own right or by delegation)."""
    if doc.migrated or not doc.workflow_code:
        return []
    spec = _spec(doc)
    ctx = condition_context(doc)
    out = []
    for t in _transitions(doc, spec):
        acting = resolve_acting(t.get("who") or [], user, doc, t.get("scope", "process"), now)
        if acting is None or not expression.evaluate(t.get("condition") or "", ctx):
            continue
        out.append(
            Available(
                code=t["code"],
                label=t.get("label") or t["code"],
                inputs=list(t.get("inputs") or []),
                on_behalf_of=acting.principal.full_name if acting.on_behalf else None,
            )
        )
    return out


def _check_inputs(t: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    wanted = list(t.get("inputs") or [])
    clean = {k: v for k, v in inputs.items() if k in INPUTS or k == "parent_assignment"}
    for name in wanted:
        value = clean.get(name)
        if name in REQUIRED_INPUTS and (value is None or value == "" or value == []):
            raise ValidationFailed(f"Vui lòng nhập: {INPUTS[name]}.")
    for key in ("comment", "reason", "report"):
        if isinstance(clean.get(key), str) and len(clean[key]) > 5000:
            raise ValidationFailed("Ý kiến dài quá 5.000 ký tự.")
    return clean


def transition(
    doc_id: Any,
    code: str,
    actor: User,
    inputs: dict[str, Any] | None = None,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Document:
    """Perform transition `code` on a document for `actor`; all or nothing.

    Checks the state, the actor's right (in their own right or by a delegation in force),
    the condition and the inputs; runs the actions on the in-memory document; then saves
    with a compare-and-set on (version, state), so of two concurrent moves exactly one wins.
    """
    from workflows.document import refresh_access

    now = now or utcnow()
    doc = _load(doc_id)
    if doc.migrated:
        raise ReadOnlyDocument()
    if expected_version is not None and doc.version != expected_version:
        raise Conflict()
    spec = _spec(doc)
    t = next((x for x in _transitions(doc, spec) if x["code"] == code), None)
    if t is None:
        if any(code == x.get("code") for x in spec.get("transitions") or []):
            raise WrongState()
        raise NotFound("Bước xử lý không tồn tại trong quy trình của văn bản.")
    acting = resolve_acting(t.get("who") or [], actor, doc, t.get("scope", "process"), now)
    if acting is None:
        raise TransitionNotAllowed()
    if not expression.evaluate(t.get("condition") or "", condition_context(doc)):
        raise ValidationFailed("Văn bản chưa thỏa điều kiện của bước này.")
    clean = _check_inputs(t, inputs or {})
    old_version, old_state = doc.version, doc.state
    ctx = actions.ActionContext(
        doc=doc,
        actor=actor,
        principal=acting.principal,
        inputs=clean,
        transition=t,
        spec=spec,
        now=now,
    )
    try:
        if code in (CIRCUIT_APPROVE, CIRCUIT_REJECT):
            next_state = _circuit_move(doc, _state(spec, doc.state), code, acting)
        else:
            next_state = t["to"]
            for call in t.get("actions") or []:
                actions.run_action(ctx, call)
            next_state = ctx.next_state or next_state
        target = _state(spec, next_state)
        if next_state != old_state:
            doc.state = next_state
            doc.state_entered_at = now
            if target.get("circuit") and (doc.circuit is None or doc.circuit.status == "draft"):
                start_circuit(doc, spec, target["circuit"], now)
        _enter_state(doc, spec, target, now)
        for uid in {str(actor.pk), str(acting.principal.pk)}:
            if uid not in doc.participant_ids:
                doc.participant_ids.append(uid)
        doc.history.append(
            HistoryEntry(
                at=now,
                actor_id=str(actor.pk),
                actor_name=actor.full_name,
                on_behalf_of_id=str(acting.principal.pk) if acting.on_behalf else None,
                on_behalf_of_name=acting.principal.full_name if acting.on_behalf else None,
                action=code,
                label=t.get("label") or code,
                from_state=old_state,
                to_state=doc.state,
                comment=clean.get("comment") or clean.get("reason") or clean.get("report"),
                detail=ctx.detail,
            )
        )
        refresh_access(doc)
        _save(doc, old_version, old_state)
    except Exception:
        for undo in reversed(ctx.on_rollback):
            try:
                undo()
            except Exception:
                log.exception("rollback step failed for document %s", doc_id)
        raise
    for effect in ctx.after_commit:
        try:
            effect()
        except Exception:
            log.exception("after-commit effect failed for document %s", doc_id)
    log.info(
        "transition doc=%s %s -> %s by=%s for=%s",
        doc.pk,
        old_state,
        doc.state,
        actor.username,
        acting.principal.username,
    )
    return doc


def _save(doc: Document, old_version: int, old_state: str) -> None:
    doc.version = old_version + 1
    doc.updated_at = utcnow()
    try:
        doc.save(save_condition={"version": old_version, "state": old_state})
    except SaveConditionError as exc:
        raise Conflict(
            "Văn bản vừa được người khác xử lý. Vui lòng tải lại trang để xem trạng thái mới."
        ) from exc
