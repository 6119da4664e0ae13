"""Login (password, then one-time code), logout, password change, OTP enrolment."""

from __future__ import annotations

import base64
import io
import time
from typing import Any
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import current_app, flash, redirect, request, session, url_for
from flask_admin import BaseView, expose
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from models.user import User
from views.base import current_actor
from workflows import auth
from workflows.errors import DomainError

PENDING = "pending_login"


class LoginForm(FlaskForm):
    username = StringField("Tên đăng nhập", validators=[DataRequired("Nhập tên đăng nhập.")])
    password = PasswordField("Mật khẩu", validators=[DataRequired("Nhập mật khẩu.")])


class OtpForm(FlaskForm):
    code = StringField(
        "Mã xác thực (6 số)",
        validators=[
            DataRequired("Nhập mã xác thực."),
            Length(min=6, max=8, message="Mã gồm 6 số."),
        ],
    )


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Mật khẩu hiện tại", validators=[DataRequired("Nhập mật khẩu hiện tại.")]
    )
    new = PasswordField("Mật khẩu mới", validators=[DataRequired("Nhập mật khẩu mới.")])
    confirm = PasswordField(
        "Nhập lại mật khẩu mới", validators=[DataRequired("Nhập lại mật khẩu.")]
    )


def needs_password_change(user: User) -> bool:
    """Tell whether the user must change the password before doing anything else."""
    if user.must_change_password:
        return True
    # Seeded demo passwords are public (README): outside demo mode they must go.
    return (
        not current_app.config["DEMO_MODE"]
        and user.is_demo_account
        and user.password_changed_at is None
    )


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("admin.index")


def _pending_user() -> User | None:
    pending = session.get(PENDING)
    if not pending or time.time() - pending["at"] > current_app.config["OTP_PENDING_SECONDS"]:
        session.pop(PENDING, None)
        return None
    return User.objects(pk=pending["uid"], active=True).first()


def _finish(user: User, next_url: str | None, channel: str, notice: str | None = None) -> Any:
    session.clear()  # a fresh session at each login: no fixation
    auth.complete_login(user, request.remote_addr, channel)
    login_user(user)
    session.permanent = True
    if notice:
        flash(notice, "success")
    flash(f"Xin chào {user.full_name}.", "success")
    return redirect(_safe_next(next_url))


def _qr_data_uri(uri: str) -> str:
    img = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    img.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


class AuthView(BaseView):
    """Account screens; the login steps are open to anonymous visitors."""

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self) -> Any:
        return redirect(url_for(".password" if current_user.is_authenticated else ".login"))

    @expose("/login", methods=("GET", "POST"))
    def login(self) -> Any:
        if current_user.is_authenticated:
            return redirect(url_for("admin.index"))
        form = LoginForm()
        next_url = request.args.get("next")
        if form.validate_on_submit():
            try:
                user = auth.check_password_step(
                    form.username.data or "", form.password.data or "", request.remote_addr
                )
            except DomainError as exc:
                flash(exc.message, "danger")
            else:
                if not auth.otp_required_for(user):
                    return _finish(user, next_url, "web")
                pending = {"uid": str(user.pk), "at": time.time(), "next": next_url}
                if user.totp_enabled:
                    session[PENDING] = pending
                    return redirect(url_for(".otp"))
                session[PENDING] = {**pending, "secret": auth.new_totp_secret()}
                return redirect(url_for(".otp_setup"))
        return self.render("auth/login.html", form=form)

    @expose("/otp", methods=("GET", "POST"))
    def otp(self) -> Any:
        user = _pending_user()
        if user is None:
            flash("Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.", "warning")
            return redirect(url_for(".login"))
        form = OtpForm()
        if form.validate_on_submit():
            try:
                auth.check_otp_step(user, form.code.data, request.remote_addr)
            except DomainError as exc:
                flash(exc.message, "danger")
                user.reload()
                if user.is_locked():
                    session.pop(PENDING, None)
                    return redirect(url_for(".login"))
            else:
                return _finish(user, session.get(PENDING, {}).get("next"), "web+otp")
        return self.render("auth/otp.html", form=form, user=user)

    @expose("/otp-setup", methods=("GET", "POST"))
    def otp_setup(self) -> Any:
        user = _pending_user()
        secret = session.get(PENDING, {}).get("secret")
        if user is None or not secret:
            flash("Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.", "warning")
            return redirect(url_for(".login"))
        form = OtpForm()
        if form.validate_on_submit():
            try:
                auth.enable_totp(user, secret, form.code.data or "")
            except DomainError as exc:
                flash(exc.message, "danger")
            else:
                return _finish(
                    user,
                    session.get(PENDING, {}).get("next"),
                    "web+otp-enrol",
                    notice="Đã bật xác thực hai lớp.",
                )
        uri = auth.totp_uri(user, secret)
        return self.render(
            "auth/otp_setup.html", form=form, user=user, qr=_qr_data_uri(uri), secret=secret
        )

    @expose("/logout", methods=("POST",))
    def logout(self) -> Any:
        logout_user()
        session.clear()
        flash("Bạn đã đăng xuất.", "info")
        return redirect(url_for(".login"))

    @expose("/password", methods=("GET", "POST"))
    @login_required
    def password(self) -> Any:
        form = PasswordForm()
        user = current_actor()
        if form.validate_on_submit():
            try:
                auth.change_password(
                    user, form.current.data or "", form.new.data or "", form.confirm.data or ""
                )
            except DomainError as exc:
                flash(exc.message, "danger")
            else:
                login_user(user)  # the session id embeds the new auth version
                flash("Đã đổi mật khẩu.", "success")
                return redirect(url_for("admin.index"))
        return self.render("auth/password.html", form=form, forced=needs_password_change(user))
