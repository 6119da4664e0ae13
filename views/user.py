"""Admin screens for users and roles."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask_admin.actions import action
from wtforms import PasswordField, SelectMultipleField, widgets
from wtforms.validators import InputRequired

from models.role import PERMISSIONS
from models.user import SECRECY_LEVELS, User
from views.base import SecuredModelView
from workflows import auth
from workflows.errors import DomainError


class UserView(SecuredModelView):
    required_permission = "admin.users"
    can_delete = False  # people leave; accounts are deactivated, history keeps their name
    column_list = (
        "username",
        "full_name",
        "unit",
        "position",
        "roles",
        "clearance",
        "active",
        "totp_enabled",
        "locked_until",
    )
    column_searchable_list = ("username", "full_name", "email", "phone")
    column_filters = ("active", "clearance", "totp_enabled")
    column_choices = {"clearance": list(SECRECY_LEVELS.items())}
    column_exclude_list = ("password_hash", "totp_secret")
    column_details_exclude_list = ("password_hash", "totp_secret", "totp_last_step", "auth_version")
    form_columns = (
        "username",
        "full_name",
        "email",
        "phone",
        "unit",
        "position",
        "roles",
        "clearance",
        "active",
        "signature_image",
        "initial_image",
        "new_password",
        "must_change_password",
    )
    form_extra_fields = {"new_password": PasswordField("Mật khẩu mới")}
    form_args = {"roles": {"validators": [InputRequired("Chọn ít nhất một vai trò.")]}}
    column_labels = {
        "username": "Tên đăng nhập",
        "full_name": "Họ và tên",
        "email": "Thư điện tử",
        "phone": "Điện thoại",
        "unit": "Đơn vị",
        "position": "Chức vụ",
        "roles": "Vai trò",
        "clearance": "Được xem văn bản mật đến mức",
        "active": "Đang hoạt động",
        "signature_image": "Ảnh chữ ký",
        "initial_image": "Ảnh chữ ký nháy",
        "new_password": "Mật khẩu mới",
        "must_change_password": "Bắt đổi mật khẩu khi đăng nhập",
        "totp_enabled": "Đã bật OTP",
        "locked_until": "Khóa đến",
        "last_login_at": "Đăng nhập lần cuối",
        "created_at": "Ngày tạo",
        "failed_logins": "Số lần đăng nhập sai",
        "is_demo_account": "Tài khoản dùng thử",
        "password_changed_at": "Đổi mật khẩu lúc",
    }
    column_descriptions = {
        "new_password": "Để trống nếu không đổi. Ít nhất 10 ký tự, có cả chữ và số.",
    }

    def on_model_change(self, form: Any, model: User, is_created: bool) -> None:
        password = form.new_password.data
        if is_created and not password:
            raise DomainError("Vui lòng đặt mật khẩu cho người dùng mới.")
        if password:
            auth.validate_new_password(password, model)
            auth.apply_password(model, password, must_change=form.must_change_password.data)

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, DomainError):
            flash(exc.message, "error")
            return True
        return bool(super().handle_view_exception(exc))

    @action("unlock", "Mở khóa đăng nhập", "Mở khóa các tài khoản đã chọn?")
    def action_unlock(self, ids: list[str]) -> None:
        for user in User.objects(pk__in=ids):
            auth.unlock(user)
        flash(f"Đã mở khóa {len(ids)} tài khoản.", "success")

    @action("reset_otp", "Đặt lại OTP", "Người dùng sẽ phải đăng ký lại ứng dụng OTP. Tiếp tục?")
    def action_reset_otp(self, ids: list[str]) -> None:
        for user in User.objects(pk__in=ids):
            auth.reset_totp(user)
        flash(f"Đã đặt lại OTP cho {len(ids)} tài khoản.", "success")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class RoleView(SecuredModelView):
    required_permission = "admin.users"
    column_list = ("name", "code", "require_otp", "permissions")
    column_labels = {
        "name": "Tên vai trò",
        "code": "Mã",
        "description": "Mô tả",
        "permissions": "Quyền",
        "require_otp": "Bắt buộc OTP khi đăng nhập",
    }
    form_overrides = {"permissions": MultiCheckboxField}
    form_args = {"permissions": {"choices": list(PERMISSIONS.items())}}
    column_formatters = {
        "permissions": lambda v, c, m, n: ", ".join(PERMISSIONS.get(p, p) for p in m.permissions)
    }
