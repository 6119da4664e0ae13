"""The registry of workflow actions: stable ids, Vietnamese labels, parameter checks.

A definition names actions by id. An action runs inside a transition on the in-memory
document, before the single atomic save; anything outside the document (jobs, notifications)
goes to `ctx.after_commit`, and anything that must be undone if a later step fails goes to
`ctx.on_rollback`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.document import Assignment, Document
from models.organization import Unit
from models.user import User
from workflows.errors import ValidationFailed

log = logging.getLogger(__name__)


@dataclass
class ActionContext:
    """What an action sees and how it defers side effects."""

    doc: Document
    actor: User
    principal: User
    inputs: dict[str, Any]
    transition: dict[str, Any]
    spec: dict[str, Any]
    now: dt.datetime
    after_commit: list[Callable[[], Any]] = field(default_factory=list)
    on_rollback: list[Callable[[], Any]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # goes into the history entry
    next_state: str | None = None  # an action may redirect the transition


@dataclass(frozen=True)
class ActionType:
    id: str
    label: str
    run: Callable[..., None]
    params: dict[str, str]  # parameter name -> Vietnamese description
    check: Callable[[dict[str, Any]], str | None] | None = None


REGISTRY: dict[str, ActionType] = {}


def register(
    action_id: str,
    label: str,
    params: dict[str, str] | None = None,
    check: Callable[[dict[str, Any]], str | None] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register an action under a stable id."""

    def decorator(func: Callable[..., None]) -> Callable[..., None]:
        REGISTRY[action_id] = ActionType(action_id, label, func, params or {}, check)
        return func

    return decorator


def action_problem(call: Any) -> str | None:
    """Return a Vietnamese description of what is wrong with an action call, or None."""
    if not isinstance(call, dict) or "id" not in call:
        return f"Hành động không hợp lệ: {call!r}."
    action = REGISTRY.get(call["id"])
    if action is None:
        return f"Hành động không tồn tại: '{call['id']}'."
    params = call.get("params") or {}
    if not isinstance(params, dict):
        return f"Tham số của hành động '{call['id']}' phải là một bảng khóa–giá trị."
    unknown = sorted(set(params) - set(action.params))
    if unknown:
        return f"Hành động '{call['id']}' không có tham số: {', '.join(unknown)}."
    return action.check(params) if action.check else None


def run_action(ctx: ActionContext, call: dict[str, Any]) -> None:
    """Run one action call of a definition."""
    REGISTRY[call["id"]].run(ctx, **(call.get("params") or {}))


# Built-in actions -------------------------------------------------------------------------


def _notify_users(ctx: ActionContext, user_ids: set[str], kind: str, text: str) -> None:
    from workflows.notification import notify

    doc_id = str(ctx.doc.pk)

    def send() -> None:
        for uid in user_ids:
            notify(uid, kind, text, link=f"/documents/{doc_id}")

    ctx.after_commit.append(send)


def _deadline(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(17, 0), tzinfo=VN_TZ)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationFailed(f"Hạn xử lý không đúng định dạng: {value}.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=VN_TZ)


VN_TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")


@register("notify", "Gửi thông báo", {"to": "Quy tắc người nhận (danh sách)", "text": "Nội dung"})
def _notify(ctx: ActionContext, to: list[dict[str, Any]] | None = None, text: str = "") -> None:
    from workflows.rules import users_for

    users: set[str] = set()
    for rule in to or [{"relation": "drafter"}]:
        users |= users_for(rule, ctx.doc)
    message = text or f"Văn bản '{ctx.doc.subject[:80]}' đã chuyển bước."
    _notify_users(ctx, users, "workflow", message)


@register("set_deadline", "Đặt hạn xử lý", {"days": "Số ngày kể từ bây giờ (nếu không nhập hạn)"})
def _set_deadline(ctx: ActionContext, days: int | None = None) -> None:
    due = _deadline(ctx.inputs.get("deadline"))
    if due is None and days:
        due = ctx.now + dt.timedelta(days=int(days))
    if due is not None:
        if due <= ctx.now:
            raise ValidationFailed("Hạn xử lý phải ở tương lai.")
        ctx.doc.due_at = due
        ctx.detail["deadline"] = due.isoformat()


@register("present", "Trình lãnh đạo", {})
def _present(ctx: ActionContext) -> None:
    leader_id = ctx.inputs.get("leader")
    leader = User.objects(pk=leader_id, active=True).first() if leader_id else None
    if leader is None or not leader.can("document.assign"):
        raise ValidationFailed("Chọn lãnh đạo có quyền phân công để trình văn bản.")
    ctx.doc.presented_to_id = str(leader.pk)
    ctx.detail["presented_to"] = leader.full_name
    _notify_users(ctx, {str(leader.pk)}, "presented", f"Văn bản trình: {ctx.doc.subject[:120]}")


def parse_assignees(raw: Any, now: dt.datetime) -> list[Assignment]:
    """Turn the `assignees` input into assignments; raise a clear error on bad input."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("Chọn ít nhất một đơn vị hoặc cá nhân xử lý.")
    out: list[Assignment] = []
    for item in raw:
        if not isinstance(item, dict) or item.get("role") not in ("lead", "coordinate", "info"):
            raise ValidationFailed("Mỗi phân công cần vai trò: chủ trì, phối hợp hoặc để biết.")
        unit = Unit.objects(pk=item["unit"]).first() if item.get("unit") else None
        user = User.objects(pk=item["user"], active=True).first() if item.get("user") else None
        if unit is None and user is None:
            raise ValidationFailed("Đơn vị hoặc người được giao không tồn tại.")
        deadline = _deadline(item.get("deadline"))
        if deadline is not None and deadline <= now:
            raise ValidationFailed("Hạn xử lý phải ở tương lai.")
        out.append(Assignment(role=item["role"], unit=unit, user=user, deadline_at=deadline))
    if sum(1 for a in out if a.role == "lead") > 1:
        raise ValidationFailed("Chỉ có một đơn vị hoặc cá nhân chủ trì.")
    return out


@register("assign_handlers", "Phân công xử lý (chủ trì, phối hợp, để biết)", {})
def _assign_handlers(ctx: ActionContext) -> None:
    new = parse_assignees(ctx.inputs.get("assignees"), ctx.now)
    parent_id = ctx.inputs.get("parent_assignment")
    for a in new:
        a.assigned_by_id = str(ctx.principal.pk)
        a.assigned_at = ctx.now
        if parent_id:
            a.parent_id = parent_id
    ctx.doc.assignments.extend(new)
    ctx.detail["assignees"] = [
        {
            "role": a.role,
            "unit": a.unit.name if a.unit else None,
            "user": a.user.full_name if a.user else None,
        }
        for a in new
    ]
    users = {str(a.user.pk) for a in new if a.user}
    from workflows.rules import _heads_of

    users |= _heads_of(str(a.unit.pk) for a in new if a.unit and not a.user)
    _notify_users(ctx, users, "assigned", f"Bạn được giao xử lý: {ctx.doc.subject[:120]}")


@register("complete_assignment", "Hoàn thành phần việc được giao", {})
def _complete_assignment(ctx: ActionContext) -> None:
    from workflows.rules import _heads_of

    uid = str(ctx.principal.pk)
    mine = [
        a
        for a in ctx.doc.assignments
        if a.status == "open"
        and (
            (a.user and str(a.user.pk) == uid)
            or (a.unit and not a.user and uid in _heads_of([str(a.unit.pk)]))
        )
    ]
    if not mine:
        raise ValidationFailed("Bạn không có phần việc nào đang mở ở văn bản này.")
    for a in mine:
        a.status = "done"
        a.completed_at = ctx.now
        a.report = ctx.inputs.get("report") or ctx.inputs.get("comment")
    # The document moves on only when the lead is done; otherwise it stays where it is.
    lead_open = any(a.status == "open" and a.role == "lead" for a in ctx.doc.assignments)
    if lead_open:
        ctx.next_state = ctx.doc.state


@register("close", "Kết thúc xử lý", {})
def _close(ctx: ActionContext) -> None:
    for a in ctx.doc.assignments:
        if a.status == "open" and a.role == "info":
            a.status = "done"
            a.completed_at = ctx.now


@register("assign_number", "Cấp số, ngày văn bản (theo sổ)", {})
def _assign_number(ctx: ActionContext) -> None:
    from workflows import register_book

    if ctx.doc.direction == "incoming":
        register_book.assign_arrival_number(ctx.doc, actor_id=str(ctx.actor.pk))
    elif ctx.doc.number is None:
        register_book.assign_number(ctx.doc, actor_id=str(ctx.actor.pk))
        doc = ctx.doc
        # If a later step fails, the number goes back for same-day re-issue, not lost.
        ctx.on_rollback.append(
            lambda: register_book.cancel_number(
                doc, str(ctx.actor.pk), "Chuyển bước không thành công, số được cấp lại"
            )
        )
    ctx.detail["number"] = ctx.doc.notation or ctx.doc.arrival_number


@register(
    "request_initials",
    "Trình ký nháy (bắt đầu luồng trình ký)",
    {"circuit": "Mã mẫu luồng trình ký"},
)
def _request_initials(ctx: ActionContext, circuit: str | None = None) -> None:
    from workflows.engine import start_circuit

    start_circuit(ctx.doc, ctx.spec, circuit, ctx.now)


@register("request_signature", "Trình ký ban hành", {})
def _request_signature(ctx: ActionContext) -> None:
    if ctx.doc.signer is None:
        raise ValidationFailed("Chưa chọn người ký văn bản.")
    if ctx.doc.current_pdf is None:
        raise ValidationFailed("Văn bản chưa có tệp PDF để ký.")
    _notify_users(
        ctx, {str(ctx.doc.signer.pk)}, "signature", f"Văn bản chờ ký: {ctx.doc.subject[:120]}"
    )


@register("dispatch", "Phát hành (gửi nơi nhận; đơn vị nội bộ nhận văn bản đến)", {})
def _dispatch(ctx: ActionContext) -> None:
    from workflows.document import deliver_internally

    doc = ctx.doc
    ctx.detail["dispatched_to"] = [u.name for u in doc.recipient_units if u]
    if doc.recipient_units:
        doc_id = str(doc.pk)
        actor_id = str(ctx.actor.pk)
        ctx.after_commit.append(lambda: deliver_internally(doc_id, actor_id))


@register("archive", "Kết thúc, lưu hồ sơ", {})
def _archive(ctx: ActionContext) -> None:
    _close(ctx)
    ctx.doc.closed = True
