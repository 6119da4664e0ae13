"""JSON API /api/v1: bearer-token auth, JSON errors, session, me, jobs, OpenAPI."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from jobs import fetch_job, job_to_api
from models.audit import Actor, reset_actor, set_actor
from models.user import User
from workflows import auth
from workflows.api_token import issue_token, resolve_token, revoke_token
from workflows.errors import DomainError, Forbidden, ValidationFailed

log = logging.getLogger(__name__)
api_bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
OPENAPI_PARTS = Path(__file__).with_name("openapi")  # one file of paths per capability


def error_response(code: str, message: str, status: int) -> Response:
    """Return the API's error body `{"error": {"code", "message"}}`."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


@api_bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    return error_response(exc.code, exc.message, exc.status)


@api_bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Turn an HTTP error into the API's JSON error body."""
    messages = {
        400: "Yêu cầu không hợp lệ.",
        401: "Chưa xác thực.",
        403: "Bạn không có quyền truy cập.",
        404: "Không tìm thấy.",
        405: "Phương thức không được hỗ trợ.",
        413: "Tệp hoặc yêu cầu quá lớn.",
        415: "Kiểu nội dung không được hỗ trợ.",
    }
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(code, messages.get(status, "Yêu cầu không hợp lệ."), status)


@api_bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected API error on %s", request.path)
    return error_response("internal_error", "Lỗi hệ thống. Vui lòng thử lại sau.", 500)


@api_bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@api_bp.teardown_request
def _unbind(exc: BaseException | None) -> None:
    token = g.pop("_api_actor_token", None)
    if token is not None:
        reset_actor(token)


def json_body() -> dict[str, Any]:
    """Return the request's JSON object or raise a clear 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("Nội dung yêu cầu phải là một đối tượng JSON.")
    return data


def require_auth(
    permission: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require a valid bearer token (and `permission`, when given)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            resolved = resolve_token(token.strip()) if scheme.lower() == "bearer" else None
            if resolved is None:
                return error_response(
                    "unauthorized",
                    "Thiếu hoặc sai mã truy cập (token), hoặc token đã hết hạn.",
                    401,
                )
            user, record = resolved
            if permission and not user.can(permission):
                raise Forbidden()
            g.api_user, g.api_token = user, record
            g._api_actor_token = set_actor(
                Actor(user_id=str(user.pk), name=user.full_name, ip=request.remote_addr)
            )
            return view(*args, **kwargs)

        return wrapper

    return decorator


def api_user() -> User:
    """Return the user the current API request authenticated as."""
    user: User = g.api_user
    return user


@api_bp.post("/session")
def create_session() -> Any:
    data = json_body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise ValidationFailed("Cần có 'username' và 'password' (chuỗi ký tự).")
    otp = data.get("otp")
    if otp is not None and not isinstance(otp, str):
        raise ValidationFailed("'otp' phải là chuỗi ký tự.")
    user = auth.authenticate(username, password, otp, request.remote_addr, channel="api")
    token, record = issue_token(user, client=request.headers.get("User-Agent"))
    return jsonify(
        {"token": token, "expires_at": record.expires_at.isoformat(), "user": user.to_api()}
    ), 201


@api_bp.delete("/session")
@require_auth()
def delete_session() -> Any:
    revoke_token(g.api_token)
    return "", 204


@api_bp.get("/me")
@require_auth()
def me() -> Any:
    return jsonify(api_user().to_api())


@api_bp.get("/jobs/<job_id>")
@require_auth()
def job_status(job_id: str) -> Any:
    job = fetch_job(job_id)
    user = api_user()
    # Another user's job is reported as missing, not as forbidden: ids are not a secret
    # channel. Administrators of the audit log may watch every job.
    if job is None or (job.meta.get("owner_id") != str(user.pk) and not user.can("admin.audit")):
        return error_response("not_found", "Không tìm thấy tác vụ.", 404)
    return jsonify(job_to_api(job))


def openapi_spec() -> dict[str, Any]:
    """The API description: the base file plus every capability's paths and schemas."""
    spec: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    for part in sorted(OPENAPI_PARTS.glob("*.yaml")):
        extra = yaml.safe_load(part.read_text(encoding="utf-8")) or {}
        spec["paths"].update(extra.get("paths") or {})
        schemas = (extra.get("components") or {}).get("schemas") or {}
        spec["components"]["schemas"].update(schemas)
    return spec


@api_bp.get("/openapi.json")
def openapi() -> Any:
    return Response(json.dumps(openapi_spec(), ensure_ascii=False), mimetype="application/json")
