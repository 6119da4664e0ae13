"""Delegation screens: my delegations (given and received), and the admin list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from mongoengine import Q

from models.delegation import KINDS, SCOPES, Delegation
from models.user import User
from views.base import SecuredBaseView, current_actor
from workflows.delegation import create_delegation, revoke_delegation
from workflows.errors import DomainError, ValidationFailed

VN = dt.timezone(dt.timedelta(hours=7))


def _local(value: str | None, label: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(f"{label} không đúng định dạng ngày giờ.") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=VN)).astimezone(dt.UTC)


class DelegationView(SecuredBaseView):
    """Everyone may delegate their own rights for a period; admins manage all."""

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        user = current_actor()
        form = FlaskForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            try:
                principal = user
                if request.form.get("principal") and user.can("admin.users"):
                    principal = User.objects.get(pk=request.form["principal"])
                create_delegation(
                    user,
                    principal,
                    User.objects(pk=request.form.get("delegate")).first(),
                    request.form.getlist("scopes"),
                    _local(request.form.get("starts_at"), "Thời điểm bắt đầu"),
                    _local(request.form.get("ends_at"), "Thời điểm kết thúc"),
                    request.form.get("reason", ""),
                    request.form.get("kind", "delegation"),
                )
            except DomainError as exc:
                flash(exc.message, "error")
            except User.DoesNotExist:
                flash("Người ủy quyền không tồn tại.", "error")
            else:
                flash("Đã ghi nhận ủy quyền.", "success")
                return redirect(url_for(".index"))
        scope = Q(principal=user) | Q(delegate=user)
        listing = Delegation.objects if user.can("admin.users") else Delegation.objects(scope)
        return self.render(
            "delegation/index.html",
            form=form,
            delegations=listing.order_by("-starts_at"),
            users=User.objects(active=True),
            scopes=SCOPES,
            kinds=KINDS,
            now=dt.datetime.now(dt.UTC),
            values=request.form,
        )

    @expose("/<delegation_id>/revoke", methods=("POST",))
    def revoke(self, delegation_id: str) -> Any:
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            revoke_delegation(current_actor(), delegation_id)
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đã thu hồi ủy quyền.", "success")
        return redirect(url_for(".index"))
