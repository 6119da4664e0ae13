"""The portal's home page."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from models.audit import AuditEntry
from models.organization import Agency, Unit
from models.user import User


class HomeView(AdminIndexView):
    """Home: who I am, my unit, and what my roles let me do."""

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self) -> Any:
        from models.role import PERMISSIONS

        user = current_user
        stats = None
        if user.can("admin.organization") or user.can("admin.users"):
            stats = {
                "units": Unit.objects(active=True).count(),
                "users": User.objects(active=True).count(),
            }
        recent_logins = (
            AuditEntry.objects(actor_id=str(user.pk), action__startswith="login.")
            .order_by("-at")
            .limit(5)
        )
        return self.render(
            "home.html",
            agency=Agency.current(),
            stats=stats,
            permissions=[(p, PERMISSIONS[p]) for p in sorted(user.permissions)],
            recent_logins=recent_logins,
        )
