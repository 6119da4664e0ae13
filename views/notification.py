"""My notifications (reminders, assignments, escalations)."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm

from models.audit import utcnow
from models.notification import Notification
from views.base import SecuredBaseView


class NotificationView(SecuredBaseView):
    def is_visible(self) -> bool:
        return False  # reached from the bell in the navigation bar

    @expose("/")
    def index(self) -> Any:
        uid = str(current_user.pk)
        notes = Notification.objects(user_id=uid).order_by("-at").limit(200)
        return self.render("notification/index.html", notes=notes)

    @expose("/read", methods=("POST",))
    def read(self) -> Any:
        if not FlaskForm().validate_on_submit():
            abort(400)
        uid = str(current_user.pk)
        only = request.form.get("id")
        query = Notification.objects.unread_for(uid)
        (query.filter(pk=only) if only else query).update(set__read_at=utcnow())
        target = request.form.get("next") or ""
        if target.startswith("/") and not target.startswith("//"):
            return redirect(target)
        return redirect(url_for(".index"))
