"""The one secured base for every portal view."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask_admin import BaseView
from flask_admin.contrib.mongoengine import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm


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


class SecuredModelView(SecuredMixin, ModelView):
    """Plain CRUD of a configuration object, with CSRF and Vietnamese defaults."""

    form_base_class = FlaskForm  # CSRF token checked by the app-wide CSRFProtect
    page_size = 50
    can_view_details = True
    can_set_page_size = True
    column_display_pk = False

    def search_placeholder(self) -> str:
        return "Tìm kiếm"
