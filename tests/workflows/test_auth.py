import pyotp
import pytest

from models.audit import AuditEntry
from models.role import Role
from models.user import User
from tests.conftest import DEMO_PASSWORD
from workflows import auth
from workflows.errors import (
    AccountLocked,
    AuthError,
    InvalidOtp,
    OtpEnrolmentRequired,
    OtpRequired,
    TooManyAttempts,
    ValidationFailed,
)


def make_leader(otp: bool = True) -> tuple[User, str]:
    """A non-demo user whose role requires OTP, with an enrolled authenticator."""
    secret = pyotp.random_base32()
    user = User(
        username="lanhdao.that",
        full_name="Lãnh Đạo Thật",
        roles=[Role.objects.get(code="lanh_dao")],
        password_hash=auth.hash_password("MatKhau-Manh-2026"),
        totp_secret=secret if otp else None,
        totp_enabled=otp,
    ).save()
    return user, secret


def test_passwords_are_hashed_with_argon2id(users):
    assert users["admin"].password_hash.startswith("$argon2id$")
    assert DEMO_PASSWORD not in users["admin"].password_hash


def test_wrong_password_is_refused_in_vietnamese(app):
    with pytest.raises(AuthError) as err:
        auth.authenticate("admin", "sai-mat-khau", None, "127.0.0.1")
    assert err.value.message == "Tên đăng nhập hoặc mật khẩu không đúng."
    failure = AuditEntry.objects(action="login.failure").first()
    assert failure.ip == "127.0.0.1" and failure.detail["reason"] == "password"


def test_unknown_user_fails_like_a_wrong_password(app):
    with pytest.raises(AuthError) as err:
        auth.authenticate("khong.ton.tai", "x", None, "127.0.0.1")
    assert err.value.code == "invalid_credentials"


def test_account_locks_after_repeated_failures_even_with_right_password(app):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        with pytest.raises(AuthError):
            auth.authenticate("chuyenvien", "sai", None, "127.0.0.2")
    with pytest.raises(AccountLocked) as err:
        auth.authenticate("chuyenvien", DEMO_PASSWORD, None, "127.0.0.2")
    assert "tạm thời bị khóa" in err.value.message
    auth.unlock(User.objects.get(username="chuyenvien"))
    assert (
        auth.authenticate("chuyenvien", DEMO_PASSWORD, None, "127.0.0.2").username == "chuyenvien"
    )


def test_address_is_rate_limited_across_accounts(app):
    app.config["LOGIN_IP_MAX_FAILURES"] = 3
    try:
        for name in ("a1", "a2", "a3"):
            with pytest.raises(AuthError):
                auth.authenticate(name, "x", None, "10.9.9.9")
        with pytest.raises(TooManyAttempts):
            auth.authenticate("admin", DEMO_PASSWORD, None, "10.9.9.9")
        # Another address is not affected.
        assert auth.authenticate("admin", DEMO_PASSWORD, None, "10.9.9.10")
    finally:
        app.config["LOGIN_IP_MAX_FAILURES"] = 30


def test_otp_is_required_checked_and_not_replayable(app):
    user, secret = make_leader()
    with pytest.raises(OtpRequired):
        auth.authenticate(user.username, "MatKhau-Manh-2026", None, "127.0.0.1")
    with pytest.raises(InvalidOtp) as err:
        auth.authenticate(user.username, "MatKhau-Manh-2026", "000000", "127.0.0.1")
    assert "OTP" in err.value.message
    code = pyotp.TOTP(secret).now()
    assert auth.authenticate(user.username, "MatKhau-Manh-2026", code, "127.0.0.1")
    with pytest.raises(InvalidOtp):  # the same code a second time
        auth.authenticate(user.username, "MatKhau-Manh-2026", code, "127.0.0.1")


def test_role_requiring_otp_without_enrolment_is_sent_to_enrol(app):
    user, _ = make_leader(otp=False)
    with pytest.raises(OtpEnrolmentRequired):
        auth.authenticate(user.username, "MatKhau-Manh-2026", None, "127.0.0.1")


def test_demo_accounts_skip_otp_only_in_demo_mode(app, users):
    assert not auth.otp_required_for(users["giamdoc"])
    app.config["DEMO_MODE"] = False
    try:
        assert auth.otp_required_for(users["giamdoc"])
    finally:
        app.config["DEMO_MODE"] = True


@pytest.mark.parametrize(
    ("new", "confirm", "message"),
    [
        ("ngan1", "ngan1", "ít nhất 10 ký tự"),
        ("khongcochuso", "khongcochuso", "cả chữ và số"),
        ("MatKhauMoi-2026", "khac-2026-abc", "không khớp"),
        (DEMO_PASSWORD, DEMO_PASSWORD, "phải khác"),
    ],
)
def test_password_change_rules(users, new, confirm, message):
    with pytest.raises(ValidationFailed, match=message):
        auth.change_password(users["chuyenvien"], DEMO_PASSWORD, new, confirm)


def test_password_change_ends_older_sessions(users):
    user = users["chuyenvien"]
    old_id = user.get_id()
    auth.change_password(user, DEMO_PASSWORD, "MatKhauMoi-2026", "MatKhauMoi-2026")
    assert user.get_id() != old_id
    assert auth.verify_password(User.objects.get(pk=user.pk), "MatKhauMoi-2026")
    with pytest.raises(ValidationFailed, match="hiện tại không đúng"):
        auth.change_password(user, DEMO_PASSWORD, "MatKhauKhac-2026", "MatKhauKhac-2026")
