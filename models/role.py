"""Roles are data; the permissions they grant come from a registry in code."""

from __future__ import annotations

from mongoengine import BooleanField, Document, ListField, StringField, ValidationError

from models.audit import audited

# The permission registry: stable id -> Vietnamese label. Later capabilities add theirs here.
PERMISSIONS: dict[str, str] = {
    "document.view_all": "Xem mọi văn bản của cơ quan (theo độ mật được phép)",
    "document.register_incoming": "Vào sổ văn bản đến",
    "document.create_draft": "Soạn thảo văn bản đi",
    "document.assign": "Phân công xử lý văn bản",
    "document.process": "Xử lý văn bản được giao",
    "document.initial": "Ký nháy (ký tắt) dự thảo",
    "document.sign": "Ký ban hành văn bản",
    "document.seal": "Đóng dấu (chữ ký số cơ quan), cấp số",
    "document.dispatch": "Phát hành văn bản",
    "register.manage": "Quản lý sổ văn bản",
    "workflow.edit": "Cấu hình quy trình",
    "archive.search": "Tra cứu kho lưu trữ",
    "archive.manage": "Quản lý hồ sơ lưu trữ",
    "migration.run": "Chuyển đổi dữ liệu cũ",
    "admin.users": "Quản trị người dùng, vai trò",
    "admin.organization": "Quản trị cơ quan, đơn vị, chức vụ, loại văn bản",
    "admin.audit": "Xem nhật ký hệ thống",
    "signing.manage": "Quản lý chứng thư số, khóa ký và chứng thư tin cậy",
}


class Role(Document):
    """A named set of permissions that an admin ticks from the registry."""

    code = StringField(required=True, unique=True, max_length=50, regex=r"^[a-z0-9_]+$")
    name = StringField(required=True, max_length=120)
    description = StringField(max_length=500)
    permissions = ListField(StringField(max_length=80))
    require_otp = BooleanField(default=False)

    meta = {"collection": "role", "ordering": ["name"]}

    def __str__(self) -> str:
        return self.name or self.code or ""

    def clean(self) -> None:
        unknown = sorted(set(self.permissions) - set(PERMISSIONS))
        if unknown:
            raise ValidationError("Quyền không tồn tại: " + ", ".join(unknown))
        self.permissions = sorted(set(self.permissions))


audited(Role)
