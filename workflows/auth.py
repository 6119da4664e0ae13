"""Authentication: passwords, lockout, TOTP second factor, password change."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from jobs import redis_connection
from models import audit
from models.audit import Actor, utcnow
from models.user import User
from workflows.errors import (
    AccountLocked,
    AuthError,
    InvalidOtp,
    OtpEnrolmentRequired,
    OtpRequired,
    TooManyAttempts,
    ValidationFailed,
)

log = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id, memory-hard
MIN_PASSWORD_LENGTH = 10
# A hash to verify against when the username does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    """Check `password` against the user's hash, upgrading the hash when needed."""
    if not user.password_hash:
        _safe_verify(_DUMMY_HASH, password)
        return False
    if not _safe_verify(user.password_hash, password):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        User.objects(pk=user.pk).update_one(set__password_hash=hash_password(password))
    return True


def _safe_verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def otp_required_for(user: User) -> bool:
    """Tell whether this user must give a one-time code to log in."""
    if current_app.config["DEMO_MODE"] and user.is_demo_account:
        return False
    return user.totp_enabled or any(r.require_otp for r in user.roles if r)


def _ip_key(ip: str | None) -> str:
    return f"vanthu:login-fail:{ip or 'unknown'}"


def _check_ip(ip: str | None) -> None:
    count = redis_connection().get(_ip_key(ip))
    if count is not None and int(count) >= current_app.config["LOGIN_IP_MAX_FAILURES"]:
        raise TooManyAttempts()


def _fail(user: User | None, ip: str | None, username: str, reason: str) -> None:
    conn = redis_connection()
    key = _ip_key(ip)
    conn.incr(key)
    conn.expire(key, current_app.config["LOGIN_IP_WINDOW_SECONDS"])
    actor = Actor(user_id=str(user.pk) if user else None, name=username[:60], ip=ip)
    detail = {"username": username[:60], "reason": reason}
    if user is not None:
        user.reload("failed_logins")
        failures = user.failed_logins + 1
        update: dict[str, object] = {"inc__failed_logins": 1}
        if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            minutes = current_app.config["LOGIN_LOCK_MINUTES"]
            update["set__locked_until"] = utcnow() + dt.timedelta(minutes=minutes)
            update["set__failed_logins"] = 0
            update.pop("inc__failed_logins")
            detail["locked_minutes"] = minutes
        User.objects(pk=user.pk).update_one(**update)
    audit.record(
        "login.failure",
        object_type="User",
        object_id=detail["username"],
        detail=detail,
        actor=actor,
    )
    log.info("login failure user=%s ip=%s reason=%s", username[:60], ip, reason)


def check_password_step(username: str, password: str, ip: str | None) -> User:
    """Verify username and password; raise a typed error on failure or lock."""
    _check_ip(ip)
    username = (username or "").strip().lower()
    user = User.objects(username=username).first() if username else None
    if user is not None and user.is_locked():
        _fail(user, ip, username, "locked")
        raise AccountLocked()
    if user is None:
        _safe_verify(_DUMMY_HASH, password or "")
        _fail(None, ip, username, "unknown user")
        raise AuthError()
    if not verify_password(user, password or ""):
        _fail(user, ip, username, "password")
        raise AuthError()
    if not user.active:
        _fail(user, ip, username, "inactive")
        raise AuthError(
            "Tài khoản đã ngừng hoạt động. Vui lòng liên hệ quản trị hệ thống.",
            code="account_inactive",
        )
    return user


def check_otp_step(user: User, code: str | None, ip: str | None) -> None:
    """Verify a TOTP code for a user who has one; each code is accepted once."""
    if not code:
        raise OtpRequired()
    code = code.strip().replace(" ", "")
    totp = pyotp.TOTP(user.totp_secret or pyotp.random_base32())
    now = time.time()
    for offset in (0, -1, 1):  # one step of clock drift either way
        step = int(now // totp.interval) + offset
        if totp.verify(code, for_time=now + offset * totp.interval, valid_window=0):
            if step <= (user.totp_last_step or 0):
                break  # replayed code
            User.objects(pk=user.pk).update_one(set__totp_last_step=step)
            return
    _fail(user, ip, user.username, "otp")
    raise InvalidOtp()


def complete_login(user: User, ip: str | None, channel: str) -> None:
    """Record a successful login and clear the failure counters."""
    User.objects(pk=user.pk).update_one(
        set__failed_logins=0, unset__locked_until=True, set__last_login_at=utcnow()
    )
    audit.record(
        "login.success",
        obj=user,
        detail={"channel": channel},
        actor=Actor(user_id=str(user.pk), name=user.full_name, ip=ip),
    )
    log.info("login success user=%s ip=%s channel=%s", user.username, ip, channel)


def authenticate(
    username: str, password: str, otp: str | None, ip: str | None, channel: str = "api"
) -> User:
    """Run both login steps at once (the API's way); return the user."""
    user = check_password_step(username, password, ip)
    if otp_required_for(user):
        if not user.totp_enabled:
            raise OtpEnrolmentRequired()
        check_otp_step(user, otp, ip)
    complete_login(user, ip, channel)
    return user


def validate_new_password(password: str, user: User) -> None:
    """Refuse weak passwords with a Vietnamese message."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"Mật khẩu mới phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự.")
    if password.lower() in {user.username.lower(), "matkhau123", "password123"}:
        raise ValidationFailed("Mật khẩu mới quá dễ đoán.")
    if password.isdigit() or password.isalpha():
        raise ValidationFailed("Mật khẩu mới phải có cả chữ và số.")


def change_password(user: User, current: str, new: str, confirm: str) -> None:
    """Change a user's password after checking the current one."""
    if not verify_password(user, current or ""):
        raise ValidationFailed("Mật khẩu hiện tại không đúng.")
    if new != confirm:
        raise ValidationFailed("Mật khẩu nhập lại không khớp.")
    if new == current:
        raise ValidationFailed("Mật khẩu mới phải khác mật khẩu hiện tại.")
    validate_new_password(new, user)
    set_password(user, new)


def apply_password(user: User, new: str, *, must_change: bool = False) -> None:
    """Put a new password hash on `user` (unsaved) and end its sessions and tokens."""
    user.password_hash = hash_password(new)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    user.auth_version = (user.auth_version or 1) + 1


def set_password(user: User, new: str, *, must_change: bool = False) -> None:
    """Store a new password and end the user's other sessions and tokens."""
    apply_password(user, new, must_change=must_change)
    user.save()


def unlock(user: User) -> None:
    """Lift a temporary login lock."""
    user.failed_logins = 0
    user.locked_until = None
    user.save()


def reset_totp(user: User) -> None:
    """Forget the user's authenticator (lost phone); they enrol again at next login."""
    user.totp_secret = None
    user.totp_enabled = False
    user.auth_version = (user.auth_version or 1) + 1
    user.save()


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    """Return the otpauth:// URI an authenticator app scans."""
    issuer = current_app.config["APP_NAME"]
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=issuer)


def enable_totp(user: User, secret: str, code: str) -> None:
    """Turn on TOTP for a user once they prove their app shows the right code."""
    if not pyotp.TOTP(secret).verify((code or "").strip().replace(" ", ""), valid_window=1):
        raise InvalidOtp()
    user.totp_secret = secret
    user.totp_enabled = True
    user.totp_last_step = int(time.time() // 30)
    user.save()
