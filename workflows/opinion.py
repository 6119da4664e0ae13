"""Opinion collection (lấy ý kiến): requests, answers, deadlines, reminders and the summary.

Why the request is its own record and not a Document running the engine: a request has many
answerers working at the same time (each unit answers its own line, revisable until the
deadline), a clock that closes it without a person acting, and a summary that goes back to
the draft it came from. Answers are therefore written with one conditional update each
(`closed=False, deadline_at > now`), never a whole-record compare-and-set that would make
concurrent answerers fail each other, and the deadline close needs no actor.

What stays data is the lifecycle: every request pins the published version of the workflow
of kind "opinion" (seeded from workflows/definitions/opinion.yaml). Its states give the
labels; its transitions say whether answering, extending and closing early are allowed in a
state, who may do them (relation `drafter` is the requester, `assignee` the person asked or
the head of the unit asked, any other rule as in documents), and with which delegation scope.
The deadline close takes the `close` transition's target. The `request_opinions` action,
registered below, lets any document workflow open a request from the document without code.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from bson import ObjectId
from flask import current_app
from mongoengine.errors import SaveConditionError
from werkzeug.datastructures import FileStorage

from models import audit
from models.audit import utcnow
from models.delegation import Delegation
from models.document import Document, HistoryEntry, StoredFile
from models.opinion import (
    ANSWERS,
    CLOSE_REASONS,
    OpinionExtension,
    OpinionRequest,
    OpinionTarget,
    aware,
)
from models.user import User
from models.workflow import WorkflowDefinition
from workflows import actions
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed
from workflows.internal_document import (
    _actor_for_audit,
    check_uploads,
    discard,
    may_send,
    parse_recipients,
    store_uploads,
)
from workflows.rules import Acting, _heads_of, delegations_to, rule_problem, users_for
from workflows.workflow_definition import version_spec

log = logging.getLogger(__name__)
VN_TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")
DEFAULT_REMINDERS = (120, 30)
MAX_AHEAD = dt.timedelta(days=366)


class OpinionClosed(Conflict):
    code = "opinion_closed"
    message = "Việc lấy ý kiến đã kết thúc hoặc đã quá hạn: không nhận thêm ý kiến."


def vn_time(value: dt.datetime | None) -> str:
    """Show a stored time in Vietnam time, as 'HH:MM dd/mm/yyyy'."""
    if value is None:
        return ""
    return aware(value).astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def parse_deadline(value: Any, now: dt.datetime) -> dt.datetime:
    """Parse a deadline (datetime-local or ISO; Vietnam time when no zone); it must be ahead."""
    if value in (None, ""):
        raise ValidationFailed("Vui lòng nhập hạn trả lời ý kiến.")
    if isinstance(value, dt.datetime):
        deadline = value if value.tzinfo else value.replace(tzinfo=VN_TZ)
    elif isinstance(value, dt.date):
        deadline = dt.datetime.combine(value, dt.time(17, 0), tzinfo=VN_TZ)
    else:
        text = str(value).strip()
        try:
            deadline = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                deadline = dt.datetime.strptime(text, "%d/%m/%Y %H:%M")
            except ValueError as exc:
                raise ValidationFailed(
                    f"Hạn trả lời không đúng định dạng ngày giờ: '{text[:30]}'."
                ) from exc
        if len(text) == 10 and "T" not in text and " " not in text:
            deadline = dt.datetime.combine(deadline.date(), dt.time(17, 0))
        deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=VN_TZ)
    deadline = deadline.astimezone(dt.UTC)
    if deadline <= now:
        raise ValidationFailed(
            f"Hạn trả lời ({vn_time(deadline)}) đã qua: hạn phải sau thời điểm hiện tại."
        )
    if deadline > now + MAX_AHEAD:
        raise ValidationFailed("Hạn trả lời quá xa: tối đa một năm kể từ hôm nay.")
    return deadline


def _clean(value: Any, limit: int, label: str) -> str:
    text = unicodedata.normalize("NFC", str(value or "")).strip()
    if len(text) > limit:
        raise ValidationFailed(f"{label} dài quá {limit} ký tự.")
    return text


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "on", "yes", "có")


# The lifecycle, from the published "opinion" workflow ---------------------------------------


def _published() -> tuple[str, int, dict[str, Any]]:
    definitions = WorkflowDefinition.objects(kind="opinion", active=True, published_version__gt=0)
    chosen = next((d for d in definitions if d.code == "opinion"), None) or definitions.first()
    if chosen is None:
        raise ValidationFailed("Chưa có quy trình lấy ý kiến nào được ban hành.")
    return (
        chosen.code,
        chosen.published_version,
        version_spec(chosen.code, chosen.published_version),
    )


def spec_of(req: OpinionRequest) -> dict[str, Any]:
    """The pinned workflow version of a request."""
    return version_spec(req.workflow_code, req.workflow_version)


def state_label(req: OpinionRequest) -> str:
    """The Vietnamese label of the request's state."""
    try:
        spec = spec_of(req)
    except NotFound:
        return req.state
    state: dict[str, Any] = next(
        (s for s in spec.get("states") or [] if s.get("code") == req.state), {}
    )
    return str(state.get("label") or req.state)


def _transition(spec: dict[str, Any], code: str, state: str) -> dict[str, Any] | None:
    return next(
        (
            t
            for t in spec.get("transitions") or []
            if t.get("code") == code and state in (t.get("from") or [])
        ),
        None,
    )


def holders(target: OpinionTarget) -> set[str]:
    """Who answers in their own right for a target: the person, or the unit's heads."""
    if target.kind == "user":
        return {str(target.user.pk)} if target.user else set()
    return _heads_of([str(target.unit.pk)]) if target.unit else set()


def _rule_users(
    rule: dict[str, Any], req: OpinionRequest, target: OpinionTarget | None
) -> set[str]:
    kind, value = next(iter(rule.items()))
    if kind != "relation":
        return users_for(rule, None)
    if value == "drafter":
        return {str(req.requester.pk)}
    if value == "drafting_unit_head":
        return _heads_of([req.requester_unit_id or ""])
    if value == "agency_head":
        return users_for({"position_level": "agency_head"}, None)
    if value in ("assignee", "lead_assignee"):
        targets = [target] if target is not None else list(req.targets)
        return set().union(*(holders(t) for t in targets)) if targets else set()
    return set()


def _acting(
    t: dict[str, Any],
    actor: User,
    req: OpinionRequest,
    now: dt.datetime,
    target: OpinionTarget | None = None,
) -> Acting | None:
    rules = t.get("who") or []

    def allowed(user: User) -> bool:
        return any(str(user.pk) in _rule_users(rule, req, target) for rule in rules)

    if allowed(actor):
        return Acting(actor, actor)
    for delegation in delegations_to(actor, t.get("scope", "process"), now):
        principal = delegation.principal
        if principal is not None and principal.active and allowed(principal):
            return Acting(actor, principal, delegation)
    return None


def answerable(
    req: OpinionRequest, user: User, now: dt.datetime | None = None
) -> list[tuple[OpinionTarget, Acting]]:
    """The targets `user` may answer for now, each with who is acted for."""
    now = now or utcnow()
    if req.closed:
        return []
    t = _transition(spec_of(req), "answer", req.state)
    if t is None:
        return []
    out = []
    for target in req.targets:
        acting = _acting(t, user, req, now, target)
        if acting is not None:
            out.append((target, acting))
    return out


def available_actions(
    req: OpinionRequest, user: User, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The lifecycle moves (extend, close...) `user` may make now."""
    now = now or utcnow()
    if req.closed:
        return []
    out = []
    for t in spec_of(req).get("transitions") or []:
        if t.get("code") == "answer" or req.state not in (t.get("from") or []):
            continue
        acting = _acting(t, user, req, now)
        if acting is not None:
            out.append(
                {
                    "code": t["code"],
                    "label": t.get("label") or t["code"],
                    "inputs": list(t.get("inputs") or []),
                    "on_behalf_of": acting.principal.full_name if acting.on_behalf else None,
                }
            )
    return out


# Who sees what ------------------------------------------------------------------------------


def keys_for(user: User, now: dt.datetime | None = None) -> list[str]:
    """The target keys a user is concerned by: self, own unit, and who delegated to them."""
    keys = {f"user:{user.pk}"}
    if user.unit is not None:
        keys.add(f"unit:{user.unit.pk}")
    for delegation in delegations_to(user, "process", now or utcnow()):
        principal = delegation.principal
        if principal is None or not principal.active:
            continue
        keys.add(f"user:{principal.pk}")
        if principal.unit is not None and str(principal.pk) in _heads_of([str(principal.unit.pk)]):
            keys.add(f"unit:{principal.unit.pk}")
    return sorted(keys)


def _oversees(req: OpinionRequest, user: User) -> bool:
    return str(req.requester.pk) == str(user.pk) or user.can("document.view_all")


def can_view(req: OpinionRequest, user: User) -> bool:
    """Tell whether `user` may open the request."""
    return _oversees(req, user) or bool(set(req.target_keys) & set(keys_for(user)))


def get_for(user: User, req_id: Any) -> OpinionRequest:
    """Return a request `user` may open; anything else is 'not found'."""
    req = OpinionRequest.objects(pk=req_id).first() if ObjectId.is_valid(str(req_id)) else None
    if req is None or not can_view(req, user):
        raise NotFound("Không tìm thấy phiếu lấy ý kiến hoặc bạn không có quyền xem.")
    return req


def shown_answers(req: OpinionRequest, user: User) -> set[str] | None:
    """The target keys whose answers `user` may read; None means all of them."""
    if _oversees(req, user):
        return None
    mine = set(keys_for(user)) & set(req.target_keys)
    if req.answers_visible and mine:
        return None
    return mine


def may_see_summary(req: OpinionRequest, user: User) -> bool:
    """The summary shows every answer: the requester, overseers, or all when answers are open."""
    return shown_answers(req, user) is None


def addressed_to(user: User, status: str | None = None) -> Any:
    """Requests that ask `user` (in person, through the unit, or by delegation)."""
    qs = OpinionRequest.objects.addressed_to(keys_for(user))
    return _status(qs, status)


def requested_by(user: User, status: str | None = None) -> Any:
    """Requests `user` sent."""
    return _status(OpinionRequest.objects.requested_by(str(user.pk)), status)


def _status(qs: Any, status: str | None) -> Any:
    if status == "open":
        return qs.filter(closed=False)
    if status == "closed":
        return qs.filter(closed=True)
    if status not in (None, "", "all"):
        raise ValidationFailed("Tham số 'status' phải là open hoặc closed.")
    return qs


# Creating and answering ---------------------------------------------------------------------


def _load(req_id: Any) -> OpinionRequest:
    req = OpinionRequest.objects(pk=req_id).first() if ObjectId.is_valid(str(req_id)) else None
    if req is None:
        raise NotFound("Không tìm thấy phiếu lấy ý kiến.")
    return req


def create_request(
    actor: User,
    data: Mapping[str, Any],
    recipients: Any,
    files: Iterable[FileStorage | None] = (),
    *,
    source_document: Document | None = None,
    inherited_files: Iterable[StoredFile] = (),
    now: dt.datetime | None = None,
    check_right: bool = True,
    announce_now: bool = True,
) -> OpinionRequest:
    """Open a request for opinions; all or nothing (nothing stored on a bad input)."""
    now = now or utcnow()
    if check_right and not may_send(actor):
        raise Forbidden("Bạn không có quyền gửi lấy ý kiến.")
    subject = _clean(data.get("subject"), 2000, "Trích yếu")
    if not subject:
        raise ValidationFailed("Vui lòng nhập nội dung cần xin ý kiến (trích yếu).")
    content = _clean(data.get("content"), 20000, "Nội dung")
    deadline = parse_deadline(data.get("deadline"), now)
    targets = parse_recipients(recipients)
    uploads = check_uploads(files)
    code, version, spec = _published()
    req = OpinionRequest(
        subject=subject,
        content=content or None,
        requester=actor,
        requester_name=actor.full_name,
        requester_unit_id=str(actor.unit.pk) if actor.unit else None,
        targets=[
            OpinionTarget(key=t.key, kind=t.kind, unit=t.unit, user=t.user, name=t.name)
            for t in targets
        ],
        target_keys=[t.key for t in targets],
        deadline_at=deadline,
        opened_at=now,
        answers_visible=_flag(data.get("answers_visible")),
        source_document=source_document,
        workflow_code=code,
        workflow_version=version,
        state=spec["initial_state"],
        created_at=now,
        updated_at=now,
    )
    req.history.append(
        HistoryEntry(
            at=now,
            actor_id=str(actor.pk),
            actor_name=actor.full_name,
            action="created",
            label=f"Gửi lấy ý kiến tới {len(targets)} nơi, hạn {vn_time(deadline)}",
            to_state=req.state,
        )
    )
    stored = store_uploads(uploads, actor)
    try:
        req.files = [*inherited_files, *stored]
        req.save()
    except Exception:
        discard(stored)
        raise
    audit.record(
        "opinion.create",
        obj=req,
        detail={"targets": [t.name for t in targets], "deadline": deadline.isoformat()},
        actor=_actor_for_audit(actor),
    )
    if announce_now:
        announce_request(req.pk)
    return req


def _people_for(target: OpinionTarget, now: dt.datetime) -> set[str]:
    """Who is told about a target's question: its holders and their delegates in force."""
    people = holders(target)
    if people:
        for delegation in Delegation.objects.active(now).filter(
            principal__in=list(people), scopes="process"
        ):
            if delegation.delegate is not None and delegation.delegate.active:
                people.add(str(delegation.delegate.pk))
    return people


def announce_request(req_id: Any) -> None:
    """Notify everyone asked (heads of units, people, their delegates)."""
    from workflows.notification import notify

    req = OpinionRequest.objects(pk=req_id).first()
    if req is None:
        return
    now = utcnow()
    people: set[str] = set()
    for target in req.targets:
        people |= _people_for(target, now)
    text = f"Xin ý kiến (hạn {vn_time(req.deadline_at)}): {req.subject[:120]}"
    for uid in people:
        notify(
            uid,
            "opinion",
            text,
            link=f"/opinions/{req.pk}",
            dedupe_key=f"opinion-new:{req.pk}:{uid}",
        )


def answer(
    req_id: Any,
    actor: User,
    choice: str,
    comment: str = "",
    *,
    file: FileStorage | None = None,
    target_key: str | None = None,
    now: dt.datetime | None = None,
) -> OpinionRequest:
    """Record (or revise) the answer of a unit or person; refused after the close."""
    now = now or utcnow()
    req = _load(req_id)
    if choice not in ANSWERS:
        raise ValidationFailed("Chọn ý kiến: Đồng ý, Không đồng ý hoặc Ý kiến khác.")
    comment = _clean(comment, 5000, "Ý kiến")
    if choice == "other" and not comment:
        raise ValidationFailed("Vui lòng ghi rõ ý kiến khác.")
    if req.closed or aware(req.deadline_at) <= now:
        raise OpinionClosed()
    if _transition(spec_of(req), "answer", req.state) is None:
        raise OpinionClosed("Phiếu lấy ý kiến không nhận ý kiến ở trạng thái hiện tại.")
    options = answerable(req, actor, now)
    if target_key:
        wanted = req.target(target_key)
        if wanted is None:
            raise ValidationFailed("Đơn vị hoặc cá nhân được trả lời thay không có trong phiếu.")
        options = [(t, a) for t, a in options if t.key == target_key]
        if not options:
            raise Forbidden(_no_right(wanted))
    if not options:
        unit_target = next(
            (t for t in req.targets if t.key in keys_for(actor) and t.kind == "unit"), None
        )
        raise Forbidden(
            _no_right(unit_target) if unit_target else "Bạn không có quyền cho ý kiến ở phiếu này."
        )
    if len(options) > 1:
        names = ", ".join(t.name for t, _ in options)
        raise ValidationFailed(
            f"Bạn cho ý kiến được cho nhiều nơi ({names}): hãy chọn nơi trả lời."
        )
    target, acting = options[0]
    uploads = check_uploads([file])
    stored = store_uploads(uploads, actor)
    new_file = stored[0] if stored else None
    revised = target.answer is not None
    behalf = acting.principal if acting.on_behalf else None
    entry = HistoryEntry(
        at=now,
        actor_id=str(actor.pk),
        actor_name=actor.full_name,
        on_behalf_of_id=str(behalf.pk) if behalf else None,
        on_behalf_of_name=behalf.full_name if behalf else None,
        action="answer_revised" if revised else "answer",
        label=f"{'Sửa ý kiến' if revised else 'Cho ý kiến'} ({target.name}): {ANSWERS[choice]}",
        comment=comment or None,
        detail={"target": target.key, "answer": choice},
    )
    update: dict[str, Any] = {
        "set__targets__S__answer": choice,
        "set__targets__S__comment": comment or None,
        "set__targets__S__answered_at": now,
        "set__targets__S__answered_by_id": str(actor.pk),
        "set__targets__S__answered_by_name": actor.full_name,
        "set__targets__S__on_behalf_of_id": str(behalf.pk) if behalf else None,
        "set__targets__S__on_behalf_of_name": behalf.full_name if behalf else None,
        "inc__targets__S__revisions": 1,
        "push__history": entry,
        "inc__version": 1,
        "set__updated_at": now,
    }
    if new_file is not None:
        update["set__targets__S__file"] = new_file
    written = OpinionRequest.objects(
        pk=req.pk, closed=False, deadline_at__gt=now, targets__key=target.key
    ).update_one(**update)
    if not written:
        discard(stored)
        raise OpinionClosed()
    if new_file is not None and target.file is not None:
        discard([target.file])
    audit.record(
        "opinion.answer",
        obj=req,
        detail={"target": target.name, "answer": choice, "revised": revised},
        actor=_actor_for_audit(actor, acting.principal),
    )
    from workflows.notification import notify

    who = f"{actor.full_name} thay {behalf.full_name}" if behalf else actor.full_name
    notify(
        str(req.requester.pk),
        "opinion_answer",
        f"{target.name} ({who}) {'sửa ý kiến' if revised else 'cho ý kiến'}: {ANSWERS[choice]}",
        link=f"/opinions/{req.pk}",
    )
    req.reload()
    return req


def _no_right(target: OpinionTarget) -> str:
    if target.kind == "unit":
        return (
            f"Bạn không có quyền cho ý kiến thay {target.name}: chỉ lãnh đạo đơn vị hoặc người "
            "được lãnh đạo đơn vị ủy quyền (xử lý văn bản) đang còn hiệu lực."
        )
    return f"Bạn không có quyền cho ý kiến thay {target.name}."


# Extending and closing ----------------------------------------------------------------------


def _move(
    req: OpinionRequest, code: str, actor: User, now: dt.datetime
) -> tuple[dict[str, Any], Acting]:
    if req.closed:
        raise OpinionClosed("Việc lấy ý kiến đã kết thúc.")
    t = _transition(spec_of(req), code, req.state)
    if t is None:
        raise Forbidden("Quy trình lấy ý kiến không cho phép thao tác này ở trạng thái hiện tại.")
    acting = _acting(t, actor, req, now)
    if acting is None:
        raise Forbidden(
            "Chỉ người gửi lấy ý kiến (hoặc người được quy trình cho phép) được "
            + ("gia hạn." if code == "extend" else "kết thúc lấy ý kiến.")
        )
    return t, acting


def extend(
    req_id: Any, actor: User, deadline: Any, reason: str = "", now: dt.datetime | None = None
) -> OpinionRequest:
    """Move the deadline later; reminders start again for the new deadline."""
    now = now or utcnow()
    req = _load(req_id)
    t, acting = _move(req, "extend", actor, now)
    new = parse_deadline(deadline, now)
    old = aware(req.deadline_at)
    if new <= old:
        raise ValidationFailed(f"Hạn mới phải sau hạn hiện tại ({vn_time(old)}).")
    reason = _clean(reason, 2000, "Lý do")
    behalf = acting.principal.full_name if acting.on_behalf else None
    written = OpinionRequest.objects(pk=req.pk, closed=False, version=req.version).update_one(
        set__deadline_at=new,
        set__opened_at=now,
        push__extensions=OpinionExtension(
            at=now,
            by_id=str(actor.pk),
            by_name=actor.full_name,
            on_behalf_of_name=behalf,
            from_deadline=old,
            to_deadline=new,
            reason=reason or None,
        ),
        push__history=HistoryEntry(
            at=now,
            actor_id=str(actor.pk),
            actor_name=actor.full_name,
            on_behalf_of_name=behalf,
            action="extend",
            label=f"{t.get('label') or 'Gia hạn'}: từ {vn_time(old)} đến {vn_time(new)}",
            comment=reason or None,
            from_state=req.state,
            to_state=req.state,
        ),
        inc__version=1,
        set__updated_at=now,
    )
    if not written:
        raise Conflict("Phiếu lấy ý kiến vừa thay đổi. Vui lòng tải lại trang và thử lại.")
    audit.record(
        "opinion.extend",
        obj=req,
        detail={"from": old.isoformat(), "to": new.isoformat()},
        actor=_actor_for_audit(actor, acting.principal),
    )
    from workflows.notification import notify

    for target in req.targets:
        if target.answer is None:
            for uid in _people_for(target, now):
                notify(
                    uid,
                    "opinion",
                    f"Gia hạn cho ý kiến đến {vn_time(new)}: {req.subject[:120]}",
                    link=f"/opinions/{req.pk}",
                )
    req.reload()
    return req


def close(
    req_id: Any, actor: User, reason: str = "", now: dt.datetime | None = None
) -> OpinionRequest:
    """Close the request before its deadline."""
    now = now or utcnow()
    req = _load(req_id)
    t, acting = _move(req, "close", actor, now)
    return _finish(
        req,
        now,
        "early",
        t["to"],
        actor=actor,
        acting=acting,
        reason=_clean(reason, 2000, "Lý do"),
        label=t.get("label"),
    )


def _final_state(spec: dict[str, Any], state: str) -> str:
    t = _transition(spec, "close", state)
    if t is not None:
        return str(t["to"])
    final = next((s["code"] for s in spec.get("states") or [] if s.get("final")), "closed")
    return str(final)


def close_expired(now: dt.datetime | None = None) -> list[str]:
    """Close every open request whose deadline has passed; return their ids."""
    now = now or utcnow()
    closed = []
    for req in OpinionRequest.objects.expired(now):
        try:
            _finish(req, now, "deadline", _final_state(spec_of(req), req.state))
            closed.append(str(req.pk))
        except Exception:
            log.exception("could not close opinion request %s", req.pk)
    return closed


def _finish(
    req: OpinionRequest,
    now: dt.datetime,
    why: str,
    state: str,
    *,
    actor: User | None = None,
    acting: Acting | None = None,
    reason: str = "",
    label: str | None = None,
) -> OpinionRequest:
    for _attempt in range(5):
        old = req.version
        missed = [t for t in req.targets if t.answer is None]
        for target in missed:
            target.missed = True
        behalf = acting.principal if acting is not None and acting.on_behalf else None
        req.history.append(
            HistoryEntry(
                at=now,
                actor_id=str(actor.pk) if actor else None,
                actor_name=actor.full_name if actor else "Hệ thống",
                on_behalf_of_name=behalf.full_name if behalf else None,
                action="close" if why == "early" else "expired",
                label=(label or "Kết thúc sớm")
                if why == "early"
                else "Hết hạn, kết thúc lấy ý kiến",
                comment=reason or None,
                from_state=req.state,
                to_state=state,
                detail={"missed": [t.name for t in missed]},
            )
        )
        req.state, req.closed, req.closed_at = state, True, now
        req.close_reason = why
        req.closed_by_name = actor.full_name if actor else "Hệ thống"
        req.version, req.updated_at = old + 1, now
        try:
            req.save(save_condition={"version": old, "closed": False})
            break
        except SaveConditionError:
            req = _load(req.pk)  # an answer landed meanwhile: recount on fresh data
            if req.closed:
                return req
    else:
        raise Conflict("Không kết thúc được phiếu lấy ý kiến. Vui lòng thử lại.")
    audit.record(
        "opinion.close",
        obj=req,
        detail={"reason": why, "missed": [t.name for t in req.targets if t.missed]},
        actor=_actor_for_audit(actor, acting.principal if acting else None) if actor else None,
    )
    try:
        from workflows.opinion_summary import attach_summary  # it reads labels from here

        attach_summary(req, now)
    except Exception:
        log.exception("could not attach the summary of opinion request %s", req.pk)
    from workflows.notification import notify

    counts = req.counts
    notify(
        str(req.requester.pk),
        "opinion_closed",
        f"Kết thúc lấy ý kiến ({CLOSE_REASONS[why].lower()}): {len(req.targets) - counts['none']}/"
        f"{len(req.targets)} nơi đã cho ý kiến. {req.subject[:100]}",
        link=f"/opinions/{req.pk}/summary",
        dedupe_key=f"opinion-closed:{req.pk}",
    )
    return req


# Reminders ----------------------------------------------------------------------------------


def reminder_offsets() -> list[int]:
    """Minutes before the deadline when reminders go out (OPINION_REMINDERS_MINUTES)."""
    raw = current_app.config.get("OPINION_REMINDERS_MINUTES", DEFAULT_REMINDERS)
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    out = set()
    for item in items:
        try:
            minutes = int(str(item).strip())
        except ValueError:
            log.warning("ignoring bad OPINION_REMINDERS_MINUTES item %r", item)
            continue
        if minutes > 0:
            out.add(minutes)
    return sorted(out, reverse=True)


def _left(delta: dt.timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} phút"
    hours, rest = divmod(minutes, 60)
    return f"{hours} giờ" + (f" {rest} phút" if rest else "")


def send_reminders(now: dt.datetime | None = None) -> int:
    """Remind the units and people who have not answered; return the notifications sent."""
    from workflows.notification import notify

    now = now or utcnow()
    offsets = reminder_offsets()
    if not offsets:
        return 0
    horizon = now + dt.timedelta(minutes=max(offsets))
    sent = 0
    for req in OpinionRequest.objects(closed=False, deadline_at__gt=now, deadline_at__lte=horizon):
        deadline, opened = aware(req.deadline_at), aware(req.opened_at or req.created_at)
        stamp = int(deadline.timestamp())
        due = [
            m
            for m in offsets
            if opened <= deadline - dt.timedelta(minutes=m) <= now
            and f"{stamp}:{m}" not in req.reminders_sent
        ]
        if not due:
            continue
        marks = [f"{stamp}:{m}" for m in due]
        left = _left(deadline - now)
        claimed = OpinionRequest.objects(pk=req.pk, reminders_sent__nin=marks).update_one(
            add_to_set__reminders_sent=marks,
            push__history=HistoryEntry(
                at=now,
                actor_name="Hệ thống",
                action="reminder",
                label=f"Nhắc hạn cho ý kiến (còn {left})",
            ),
        )
        if not claimed:
            continue  # another runner took it
        text = f"Nhắc: còn {left} đến hạn cho ý kiến ({vn_time(deadline)}): {req.subject[:120]}"
        for target in req.targets:
            if target.answer is not None:
                continue
            for uid in _people_for(target, now):
                key = f"opinion-remind:{req.pk}:{marks[-1]}:{uid}"
                if notify(uid, "due_soon", text, link=f"/opinions/{req.pk}", dedupe_key=key):
                    sent += 1
    return sent


# The workflow action ------------------------------------------------------------------------


def _check_params(params: dict[str, Any]) -> str | None:
    hours = params.get("hours")
    if hours is not None and (
        isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 366
    ):
        return "Tham số 'hours' của 'request_opinions' phải là số giờ dương."
    rules = params.get("recipients") or []
    if not isinstance(rules, list):
        return "Tham số 'recipients' của 'request_opinions' phải là danh sách quy tắc."
    for rule in rules:
        if msg := rule_problem(rule):
            return f"'request_opinions': {msg}"
    if not isinstance(params.get("answers_visible", False), bool):
        return "Tham số 'answers_visible' của 'request_opinions' phải là true hoặc false."
    return None


def document_files(doc: Document) -> list[StoredFile]:
    files = [doc.current_pdf or doc.current_revision, *doc.attachments]
    return [
        StoredFile(
            file_id=f.file_id,
            filename=f.filename,
            mime=f.mime,
            size=f.size,
            sha256=f.sha256,
            uploaded_at=f.uploaded_at,
            uploaded_by=f.uploaded_by,
        )
        for f in files
        if f is not None
    ]


@actions.register(
    "request_opinions",
    "Lấy ý kiến đơn vị, cá nhân về văn bản",
    {
        "hours": "Hạn trả lời sau bao nhiêu giờ (khi người thực hiện không nhập hạn)",
        "recipients": "Quy tắc người được hỏi thêm (danh sách), ngoài người được chọn",
        "answers_visible": "Người được hỏi xem được ý kiến của nhau (true/false)",
    },
    check=_check_params,
)
def _request_opinions(
    ctx: actions.ActionContext,
    hours: float | None = None,
    recipients: list[dict[str, Any]] | None = None,
    answers_visible: bool = False,
) -> None:
    doc = ctx.doc
    raw = [
        f"{kind}:{item[kind]}"
        for item in ctx.inputs.get("assignees") or []
        if isinstance(item, dict)
        for kind in ("unit", "user")
        if item.get(kind)
    ]
    for rule in recipients or []:
        raw += [f"user:{uid}" for uid in sorted(users_for(rule, doc))]
    deadline = ctx.inputs.get("deadline") or (
        ctx.now + dt.timedelta(hours=float(hours)) if hours else None
    )
    req = create_request(
        ctx.actor,
        {
            "subject": doc.subject,
            "content": ctx.inputs.get("comment") or f"Xin ý kiến về dự thảo: {doc.subject}",
            "deadline": deadline,
            "answers_visible": answers_visible,
        },
        raw,
        source_document=doc,
        inherited_files=document_files(doc),
        now=ctx.now,
        check_right=False,
        announce_now=False,
    )
    ctx.on_rollback.append(req.delete)
    ctx.detail["opinion_request"] = str(req.pk)
    ctx.detail["deadline"] = aware(req.deadline_at).isoformat()
    req_id = req.pk
    ctx.after_commit.append(lambda: announce_request(req_id))
