"""Delegations: a person lets another act for them, by date range and scope."""

from __future__ import annotations

import datetime as dt

from models import audit
from models.audit import utcnow
from models.delegation import KINDS, SCOPES, Delegation
from models.user import User
from workflows.errors import Forbidden, NotFound, ValidationFailed


def create_delegation(
    actor: User,
    principal: User,
    delegate: User | None,
    scopes: list[str],
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    reason: str,
    kind: str = "delegation",
) -> Delegation:
    """Record a delegation from `principal` to `delegate`; only they or an admin may."""
    if actor.pk != principal.pk and not actor.can("admin.users"):
        raise Forbidden("Chỉ người ủy quyền hoặc quản trị hệ thống được tạo ủy quyền này.")
    if kind not in KINDS:
        raise ValidationFailed("Loại ủy quyền không hợp lệ.")
    if kind == "deputy" and not actor.can("admin.users"):
        raise Forbidden("Chỉ quản trị hệ thống giao quyền thường xuyên cho cấp phó.")
    if delegate is None or not delegate.active:
        raise ValidationFailed("Người được ủy quyền không tồn tại hoặc đã ngừng hoạt động.")
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValidationFailed("Chọn phạm vi ủy quyền: xử lý, ký nháy, ký ban hành.")
    starts_at = starts_at or utcnow()
    if kind == "delegation" and ends_at is None:
        raise ValidationFailed("Ủy quyền phải có thời hạn kết thúc.")
    if ends_at is not None and ends_at <= utcnow():
        raise ValidationFailed("Thời hạn kết thúc phải ở tương lai.")
    delegation = Delegation(
        principal=principal,
        delegate=delegate,
        kind=kind,
        scopes=sorted(set(scopes)),
        starts_at=starts_at,
        ends_at=ends_at,
        reason=(reason or "").strip()[:500],
        created_by_id=str(actor.pk),
    )
    try:
        delegation.save()
    except Exception as exc:  # mongoengine ValidationError from clean()
        message = getattr(exc, "message", None) or str(exc)
        raise ValidationFailed(str(message)) from exc
    return delegation


def revoke_delegation(actor: User, delegation_id: str) -> Delegation:
    """End a delegation now (the principal, the delegate or an admin)."""
    delegation = Delegation.objects(pk=delegation_id).first()
    if delegation is None:
        raise NotFound("Không tìm thấy ủy quyền.")
    allowed = {delegation.principal.pk, delegation.delegate.pk}
    if actor.pk not in allowed and not actor.can("admin.users"):
        raise Forbidden()
    if delegation.revoked_at is None:
        delegation.revoked_at = utcnow()
        delegation.save()
        audit.record("delegation.revoke", obj=delegation)
    return delegation
