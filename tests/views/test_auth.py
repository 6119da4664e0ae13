import time

import pyotp

from models.audit import AuditEntry
from models.role import Role
from models.user import User
from tests.conftest import DEMO_PASSWORD, csrf_token, web_login
from workflows import auth


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/unit/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_login_page_is_vietnamese_and_has_csrf(client):
    page = client.get("/auth/login")
    assert "Đăng nhập hệ thống quản lý văn bản" in page.text
    assert csrf_token(page.text)


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/auth/login", data={"username": "admin", "password": DEMO_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_wrong_password_shows_a_vietnamese_message(client):
    response = web_login(client, "admin", "sai-mat-khau")
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in response.text


def test_locked_account_message(client, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        web_login(client, "chuyenvien", "sai")
    response = web_login(client, "chuyenvien")
    assert "tạm thời bị khóa" in response.text


def test_login_and_logout(client, app):
    response = web_login(client, "admin")
    assert "Xin chào Quản trị Hệ thống" in response.text
    banner = "dữ liệu được lưu trong bộ nhớ" in response.text
    assert banner == app.config["EMBEDDED"]
    logout = client.post(
        "/auth/logout", data={"csrf_token": csrf_token(response.text)}, follow_redirects=True
    )
    assert "Bạn đã đăng xuất." in logout.text
    assert client.get("/").status_code == 302


def test_open_redirect_after_login_is_refused(client):
    page = client.get("/auth/login?next=https://evil.example/")
    response = client.post(
        "/auth/login?next=https://evil.example/",
        data={"username": "admin", "password": DEMO_PASSWORD, "csrf_token": csrf_token(page.text)},
    )
    assert response.headers["Location"] == "/"


def _otp_user() -> tuple[User, str]:
    secret = pyotp.random_base32()
    user = User(
        username="vanthu.that",
        full_name="Văn Thư Thật",
        roles=[Role.objects.get(code="van_thu")],
        password_hash=auth.hash_password("MatKhau-Manh-2026"),
        totp_secret=secret,
        totp_enabled=True,
    ).save()
    return user, secret


def test_login_with_one_time_code(client):
    user, secret = _otp_user()
    step1 = web_login(client, user.username, "MatKhau-Manh-2026")
    assert "Xác thực hai lớp" in step1.text
    wrong = client.post(
        "/auth/otp",
        data={"code": "123456", "csrf_token": csrf_token(step1.text)},
        follow_redirects=True,
    )
    assert "Mã xác thực (OTP) không đúng hoặc đã hết hạn." in wrong.text
    ok = client.post(
        "/auth/otp",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(wrong.text)},
        follow_redirects=True,
    )
    assert "Xin chào Văn Thư Thật" in ok.text
    assert AuditEntry.objects(action="login.success", actor_id=str(user.pk)).count() == 1


def test_first_login_of_an_otp_role_enrols_the_authenticator(client):
    user = User(
        username="lanhdao.moi",
        full_name="Lãnh Đạo Mới",
        roles=[Role.objects.get(code="lanh_dao")],
        password_hash=auth.hash_password("MatKhau-Manh-2026"),
    ).save()
    page = web_login(client, user.username, "MatKhau-Manh-2026")
    assert "Đăng ký xác thực hai lớp" in page.text
    assert "data:image/svg+xml;base64," in page.text
    secret = page.text.split('id="otp-secret">')[1].split("<")[0]
    done = client.post(
        "/auth/otp-setup",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(page.text)},
        follow_redirects=True,
    )
    assert "Đã bật xác thực hai lớp." in done.text
    assert User.objects.get(pk=user.pk).totp_enabled


def test_pending_otp_step_expires(client, app):
    user, _secret = _otp_user()
    web_login(client, user.username, "MatKhau-Manh-2026")
    with client.session_transaction() as sess:
        sess["pending_login"]["at"] = time.time() - app.config["OTP_PENDING_SECONDS"] - 1
        sess.modified = True
    response = client.get("/auth/otp", follow_redirects=True)
    assert "Phiên đăng nhập đã hết hạn" in response.text


def test_demo_passwords_must_be_changed_outside_demo_mode(client, app):
    app.config["DEMO_MODE"] = False
    try:
        response = web_login(client, "chuyenvien")
        assert "Bạn cần đổi mật khẩu trước khi tiếp tục" in response.text
        assert client.get("/").headers["Location"].endswith("/auth/password")
        changed = client.post(
            "/auth/password",
            data={
                "current": DEMO_PASSWORD,
                "new": "MatKhauMoi-2026",
                "confirm": "MatKhauMoi-2026",
                "csrf_token": csrf_token(response.text),
            },
            follow_redirects=True,
        )
        assert "Đã đổi mật khẩu." in changed.text
        assert client.get("/").status_code == 200
    finally:
        app.config["DEMO_MODE"] = True


def test_session_cookie_is_http_only(client):
    response = client.get("/auth/login")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie
