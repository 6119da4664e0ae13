import datetime as dt

import pytest

from models.api_token import ApiToken
from tests.conftest import DEMO_PASSWORD, api_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_session_and_me(client):
    token = api_token(client, "vanthu")
    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json["username"] == "vanthu"
    assert "document.register_incoming" in me.json["permissions"]
    assert me.json["unit"]["name"] == "Văn phòng Sở"
    assert len(ApiToken.objects.first().token_hash) == 64  # only the digest is stored
    assert ApiToken.objects(token_hash=token).first() is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "admin", "password": "sai"}, 401, "invalid_credentials"),
        ({"username": "admin"}, 400, "invalid_input"),
        ({"username": 5, "password": []}, 400, "invalid_input"),
        ([], 400, "invalid_input"),
        ({"username": "admin", "password": DEMO_PASSWORD, "otp": 123}, 400, "invalid_input"),
    ],
)
def test_bad_login_bodies_get_json_errors(client, body, status, code):
    response = client.post("/api/v1/session", json=body)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]


def test_malformed_json_is_a_400_not_a_500(client):
    response = client.post("/api/v1/session", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["message"] == "Nội dung yêu cầu phải là một đối tượng JSON."


def test_locked_account_over_the_api(client, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/api/v1/session", json={"username": "phophong", "password": "sai"})
    response = client.post(
        "/api/v1/session", json={"username": "phophong", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 423
    assert response.json["error"]["code"] == "account_locked"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer khong-hop-le", "Basic abc"])
def test_missing_or_wrong_tokens_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_revoked_and_expired_tokens_stop_working(client):
    token = api_token(client, "chuyenvien")
    assert client.delete("/api/v1/session", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    token = api_token(client, "chuyenvien")
    ApiToken.objects.update(set__expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_password_change_revokes_tokens(client, users):
    from workflows.auth import change_password

    token = api_token(client, "chuyenvien")
    change_password(users["chuyenvien"], DEMO_PASSWORD, "MatKhauMoi-2026", "MatKhauMoi-2026")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_session_cookie_does_not_authenticate_the_api(client):
    from tests.conftest import web_login

    web_login(client, "admin")
    assert client.get("/api/v1/me").status_code == 401


def test_unknown_api_path_and_method_are_json(client):
    assert client.get("/api/v1/khong-co").json["error"]["code"] == "not_found"
    response = client.put("/api/v1/session", json={})
    assert response.status_code == 405
    assert response.json["error"]["message"] == "Phương thức không được hỗ trợ."


def test_openapi_document_lists_the_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/session", "/me", "/jobs/{id}", "/search", "/legacy-imports"):
        assert path in spec["paths"]
