"""The portal's home page."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from models.audit import AuditEntry
from models.organization import Agency, Unit
from models.user import User


def _state_labels() -> dict[tuple[str, str], str]:
    """Vietnamese state labels of the published document workflows, by direction."""
    from models.workflow import WorkflowDefinition
    from workflows.workflow_definition import version_spec

    out: dict[tuple[str, str], str] = {}
    for definition in WorkflowDefinition.objects(kind="document", published_version__gt=0):
        spec = version_spec(definition.code, definition.published_version)
        for direction in definition.directions:
            for state in spec.get("states") or []:
                out[(direction, state["code"])] = state.get("label") or state["code"]
    return out


class HomeView(AdminIndexView):
    """Home: my work, the documents' figures, and what my roles let me do."""

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
        from workflows.dashboard import dashboard

        figures = dashboard(user)
        labels = _state_labels()
        return self.render(
            "home.html",
            figures=figures,
            state_rows=[
                (direction, labels.get((direction, state), state), count)
                for (direction, state), count in sorted(figures["by_state"].items())
            ],
            agency=Agency.current(),
            stats=stats,
            permissions=[(p, PERMISSIONS[p]) for p in sorted(user.permissions)],
            recent_logins=recent_logins,
        )
