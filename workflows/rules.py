"""Who may act: rules of a workflow definition, resolved for a document, with delegation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from models.audit import utcnow
from models.delegation import Delegation
from models.document import Document
from models.organization import Position, Unit
from models.role import PERMISSIONS, Role
from models.user import User

# Relations to the document a rule may name, with their Vietnamese meaning.
RELATIONS: dict[str, str] = {
    "drafter": "Người soạn thảo / người tạo văn bản",
    "drafting_unit_head": "Lãnh đạo đơn vị soạn thảo",
    "presented_leader": "Lãnh đạo được trình văn bản",
    "signer": "Người ký văn bản",
    "assignee": "Người/đơn vị được giao xử lý (chưa hoàn thành)",
    "lead_assignee": "Người/đơn vị chủ trì xử lý",
    "agency_head": "Người đứng đầu cơ quan",
    "circuit_step": "Người được nêu ở bước trình ký hiện tại",
}
RULE_KINDS = ("role", "position", "position_level", "permission", "relation", "user")
HEAD_LEVELS = ("unit_head", "agency_head")


@dataclass(frozen=True)
class Acting:
    """The person acting and, when acting by delegation, the person acted for."""

    actor: User
    principal: User  # == actor when acting in one's own right
    delegation: Delegation | None = None

    @property
    def on_behalf(self) -> bool:
        return self.principal.pk != self.actor.pk


def rule_problem(rule: Any) -> str | None:
    """Return a Vietnamese description of what is wrong with a rule, or None."""
    if not isinstance(rule, dict) or len(rule) != 1:
        return f"Quy tắc người thực hiện không hợp lệ: {rule!r}."
    kind, value = next(iter(rule.items()))
    if kind not in RULE_KINDS:
        return f"Loại quy tắc không tồn tại: '{kind}'."
    if kind == "role" and not Role.objects(code=value).first():
        return f"Vai trò không tồn tại: '{value}'."
    if kind == "position" and not Position.objects(name=value).first():
        return f"Chức vụ không tồn tại: '{value}'."
    if kind == "position_level" and value not in (
        "agency_head",
        "agency_deputy",
        "unit_head",
        "unit_deputy",
        "staff",
    ):
        return f"Cấp chức vụ không tồn tại: '{value}'."
    if kind == "permission" and value not in PERMISSIONS:
        return f"Quyền không tồn tại: '{value}'."
    if kind == "relation" and value not in RELATIONS:
        return f"Quan hệ không tồn tại: '{value}'."
    if kind == "user" and not User.objects(username=value, active=True).first():
        return f"Người dùng không tồn tại hoặc đã ngừng hoạt động: '{value}'."
    return None


def _heads_of(unit_ids: Iterable[str]) -> set[str]:
    ids = [u for u in unit_ids if u]
    if not ids:
        return set()
    positions = Position.objects(level__in=HEAD_LEVELS)
    return {str(u.pk) for u in User.objects(unit__in=ids, position__in=positions, active=True)}


def _open_assignments(doc: Document, roles: tuple[str, ...]) -> list[Any]:
    return [a for a in doc.assignments if a.status == "open" and a.role in roles]


def users_for(rule: dict[str, Any], doc: Document | None) -> set[str]:
    """Return the ids of active users a rule designates (for this document)."""
    kind, value = next(iter(rule.items()))
    active = User.objects(active=True)
    if kind == "role":
        role = Role.objects(code=value).first()
        return {str(u.pk) for u in active.filter(roles=role)} if role else set()
    if kind == "position":
        pos = Position.objects(name=value).first()
        return {str(u.pk) for u in active.filter(position=pos)} if pos else set()
    if kind == "position_level":
        return {str(u.pk) for u in active.filter(position__in=Position.objects(level=value))}
    if kind == "permission":
        roles = Role.objects(permissions=value)
        return {str(u.pk) for u in active.filter(roles__in=roles)}
    if kind == "user":
        return {str(u.pk) for u in active.filter(username=value)}
    if doc is None:
        return set()
    if value == "drafter":
        return {doc.created_by_id} if doc.created_by_id else set()
    if value == "drafting_unit_head":
        unit = doc.issuer_unit.pk if doc.issuer_unit else doc.owner_unit_id
        return _heads_of([str(unit)] if unit else [])
    if value == "presented_leader":
        return {doc.presented_to_id} if doc.presented_to_id else set()
    if value == "signer":
        return {str(doc.signer.pk)} if doc.signer else set()
    if value == "agency_head":
        return {
            str(u.pk) for u in active.filter(position__in=Position.objects(level="agency_head"))
        }
    if value in ("assignee", "lead_assignee"):
        roles = ("lead",) if value == "lead_assignee" else ("lead", "coordinate", "info")
        found = _open_assignments(doc, roles)
        users = {str(a.user.pk) for a in found if a.user}
        return users | _heads_of(str(a.unit.pk) for a in found if a.unit and not a.user)
    if value == "circuit_step":
        if not doc.circuit:
            return set()
        active_steps = [s for s in doc.circuit.steps if s.status == "active"]
        return {u for s in active_steps for u in s.user_ids if u not in s.done_by}
    return set()


def matches(rules: list[dict[str, Any]], user: User, doc: Document | None) -> bool:
    """Tell whether `user` satisfies one of `rules` for `doc`."""
    uid = str(user.pk)
    return any(uid in users_for(rule, doc) for rule in rules)


def delegations_to(user: User, scope: str, at: dt.datetime | None = None) -> list[Delegation]:
    """Delegations in force that let `user` act for someone else within `scope`.

    Only direct delegations count: a delegate can never pass on what was delegated to them
    (TUQ. cannot be re-delegated).
    """
    return list(Delegation.objects.active(at).filter(delegate=user, scopes=scope))


def resolve_acting(
    rules: list[dict[str, Any]],
    actor: User,
    doc: Document | None,
    scope: str,
    at: dt.datetime | None = None,
) -> Acting | None:
    """Return how `actor` may act under `rules` (own right first, then delegation), or None."""
    if matches(rules, actor, doc):
        return Acting(actor, actor)
    for delegation in delegations_to(actor, scope, at or utcnow()):
        principal = delegation.principal
        if principal is not None and principal.active and matches(rules, principal, doc):
            return Acting(actor, principal, delegation)
    return None


def principals_of(user: User, at: dt.datetime | None = None) -> list[str]:
    """Return the user's id and the ids of everyone who delegated anything to them."""
    ids = [str(user.pk)]
    for delegation in Delegation.objects.active(at).filter(delegate=user):
        if delegation.principal is not None:
            ids.append(str(delegation.principal.pk))
    return ids


def unit_ids_under(unit: Unit | None) -> list[str]:
    """Return the ids of a unit and every unit below it."""
    return [str(i) for i in unit.subtree_ids()] if unit else []
