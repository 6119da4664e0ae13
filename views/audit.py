"""Read-only admin screen for the audit log."""

from __future__ import annotations

from views.base import SecuredModelView


class AuditEntryView(SecuredModelView):
    required_permission = "admin.audit"
    can_create = False
    can_edit = False
    can_delete = False
    column_default_sort = ("at", True)
    column_list = (
        "at",
        "action",
        "actor_name",
        "on_behalf_of",
        "object_type",
        "object_label",
        "ip",
    )
    column_filters = ("action", "actor_name", "object_type", "ip", "at")
    column_searchable_list = ("actor_name", "object_label", "action")
    column_labels = {
        "at": "Thời điểm",
        "action": "Hành động",
        "actor_name": "Người thực hiện",
        "on_behalf_of": "Thay cho",
        "object_type": "Đối tượng",
        "object_id": "Mã đối tượng",
        "object_label": "Mô tả",
        "detail": "Chi tiết",
        "ip": "Địa chỉ IP",
        "actor_id": "Mã người thực hiện",
    }
