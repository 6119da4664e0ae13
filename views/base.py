"""The one secured base for every portal view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView
from flask_admin.contrib.mongoengine import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from models.user import User
from workflows.errors import DomainError


def current_actor() -> User:
    """Return the logged-in user itself (not the proxy), as workflows expect."""
    user: User = current_user._get_current_object()
    return user


def form_ok() -> bool:
    """Check the posted form's CSRF token; flash why when it is stale."""
    if FlaskForm().validate_on_submit():
        return True
    flash("Phiên làm việc đã hết hạn. Vui lòng tải lại trang và thử lại.", "error")
    return False


def act(done: str, operation: Callable[[], Any], target: str) -> Response:
    """Run a posted operation: flash its outcome in Vietnamese, go back to `target`."""
    if form_ok():
        try:
            operation()
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(done, "success")
    return redirect(target)


class SecuredMixin:
    """Let a view in only for a logged-in user holding `required_permission`."""

    required_permission: str | None = None

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        return self.required_permission is None or current_user.can(self.required_permission)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


class SecuredBaseView(SecuredMixin, BaseView):
    """A custom portal screen (workflow screens, search, reports)."""

    def _user(self) -> User:
        return current_actor()


class SecuredModelView(SecuredMixin, ModelView):
    """Plain CRUD of a configuration object, with CSRF and Vietnamese defaults."""

    form_base_class = FlaskForm  # CSRF token checked by the app-wide CSRFProtect
    page_size = 50
    can_view_details = True
    can_set_page_size = True
    column_display_pk = False

    def search_placeholder(self) -> str:
        return "Tìm kiếm"
