"""Web layer: extensions, the portal (Flask-Admin) and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, redirect, render_template, request, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from models.audit import Actor, reset_actor, set_actor
from models.user import User

VN_TZ = __import__("datetime").timezone(__import__("datetime").timedelta(hours=7))
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        pk, version = user_id.split(":", 1)
        user = User.objects(pk=pk).first()
    except Exception:
        return None
    if user is None or not user.active or str(user.auth_version) != version:
        return None
    return user


def _prefer_our_admin_catalog(directory: str) -> None:
    """Load our Flask-Admin catalog after Flask-Admin's own, so our fixes win.

    Flask-Admin's `translations_path` is merged *before* its own catalog, which would let
    its wrong translations win; Flask-Babel merges later directories over earlier ones.
    """
    from flask_admin import translations as fa_translations
    from flask_admin.babel import domain

    domain._translation_directories = [fa_translations.__path__[0], directory]
    domain.cache.clear()


def init_views(app: Flask) -> None:
    """Register extensions, the portal views and the API."""
    from models.audit import AuditEntry
    from models.document_type import DocumentType
    from models.organization import Agency, Position, Unit
    from models.role import Role
    from views import document_api  # noqa: F401 - registers the document endpoints
    from views.api import api_bp
    from views.audit import AuditEntryView
    from views.auth import AuthView, needs_password_change
    from views.case_file import init_case_file_views  # also registers its API endpoints
    from views.delegation import DelegationView
    from views.document import DocumentView
    from views.document_type import DocumentTypeView
    from views.home import HomeView
    from views.i18n import compile_catalogs
    from views.internal_document import register_internal_documents
    from views.legacy_import import register_legacy_import
    from views.notification import NotificationView
    from views.opinion import register_opinions
    from views.organization import AgencyView, PositionView, UnitView
    from views.register_book import add_register_views
    from views.search import SearchView
    from views.user import RoleView, UserView
    from views.workflow import WorkflowView
    from workflows import search as _search  # noqa: F401 - connects the index signals

    translations = compile_catalogs(app)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = translations
    babel.init_app(app, locale_selector=lambda: "vi", timezone_selector=lambda: "Asia/Ho_Chi_Minh")
    _prefer_our_admin_catalog(translations)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Vui lòng đăng nhập để tiếp tục."
    login_manager.login_message_category = "warning"
    login_manager.session_protection = "strong"

    admin = Admin(
        app,
        name=app.config["APP_NAME"],
        url="/",
        index_view=HomeView(name="Trang chủ", url="/", endpoint="admin"),
        theme=Bootstrap4Theme(fluid=True),
    )
    admin.add_view(AuthView(name="Tài khoản", endpoint="auth", url="/auth"))
    admin.add_view(DocumentView(name="Văn bản", endpoint="document", url="/documents"))
    admin.add_view(DelegationView(name="Ủy quyền", endpoint="delegation", url="/delegations"))
    admin.add_view(SearchView(name="Tra cứu", endpoint="search", url="/search"))
    admin.add_view(
        NotificationView(name="Thông báo", endpoint="notification", url="/notifications")
    )
    org, people = "Tổ chức", "Người dùng"
    admin.add_view(AgencyView(Agency, name="Cơ quan", category=org, endpoint="agency"))
    admin.add_view(UnitView(Unit, name="Đơn vị", category=org, endpoint="unit"))
    admin.add_view(PositionView(Position, name="Chức vụ", category=org, endpoint="position"))
    admin.add_view(UserView(User, name="Người dùng", category=people, endpoint="user"))
    admin.add_view(RoleView(Role, name="Vai trò", category=people, endpoint="role"))
    admin.add_view(
        DocumentTypeView(
            DocumentType, name="Loại văn bản", category="Danh mục", endpoint="document_type"
        )
    )
    add_register_views(admin)
    admin.add_view(
        AuditEntryView(AuditEntry, name="Nhật ký hệ thống", category="Hệ thống", endpoint="audit")
    )
    admin.add_view(
        WorkflowView(
            name="Quy trình xử lý", category="Hệ thống", endpoint="workflow", url="/workflows"
        )
    )
    register_internal_documents(admin)
    register_opinions(admin)
    from views.signature import register_signature_views

    register_signature_views(admin, app)
    init_case_file_views(app, admin)
    register_legacy_import(app, admin)
    app.extensions["vanthu_admin"] = admin

    csrf.exempt(api_bp)  # bearer tokens only, never cookies: nothing to forge
    app.register_blueprint(api_bp)

    @app.before_request
    def _bind_actor() -> Any:
        if request.blueprint == "api" or request.endpoint in (None, "static"):
            return None
        if current_user.is_authenticated:
            g._actor_token = set_actor(
                Actor(
                    user_id=str(current_user.pk),
                    name=current_user.full_name,
                    ip=request.remote_addr,
                )
            )
            if needs_password_change(current_user) and request.endpoint not in (
                "auth.password",
                "auth.logout",
                "admin.static",
            ):
                return redirect(url_for("auth.password"))
        return None

    @app.teardown_request
    def _unbind_actor(exc: BaseException | None) -> None:
        token = g.pop("_actor_token", None)
        if token is not None:
            reset_actor(token)

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.template_filter("vn_datetime")
    def _vn_datetime(value: Any) -> str:
        """Show a stored (UTC) time in Vietnam time."""
        import datetime as dt

        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return str(value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M"))

    @app.context_processor
    def _portal_context() -> dict[str, Any]:
        from models.notification import Notification

        unread = 0
        if current_user.is_authenticated:
            unread = Notification.objects.unread_for(str(current_user.pk)).count()
        return {
            "unread_notifications": unread,
            "embedded_mode": app.config["EMBEDDED"],
            "demo_mode": app.config["DEMO_MODE"],
        }

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        # Routing errors (404, 405) happen before a blueprint is known: decide by path.
        if request.path.startswith("/api/"):
            from views.api import http_error

            return http_error(exc)
        if exc.code in (403, 404):
            return render_template(f"errors/{exc.code}.html"), exc.code
        return exc
