"""JSON API for documents and their workflow actions; same checks as the screens."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request

from models.document import DIRECTIONS, Document
from views.api import api_bp, api_user, json_body, require_auth
from views.document import document_query, send_stored
from workflows import document as documents
from workflows import engine
from workflows.errors import Conflict, ValidationFailed
from workflows.signature import signing_kind_for

MAX_LIMIT = 100


@api_bp.get("/documents")
@require_auth()
def list_documents() -> Any:
    user = api_user()
    args = request.args
    direction = args.get("direction")
    if direction and direction not in DIRECTIONS:
        raise ValidationFailed("Tham số 'direction' phải là incoming, outgoing hoặc internal.")
    try:
        limit = min(MAX_LIMIT, max(1, int(args.get("limit", 20))))
        offset = max(0, int(args.get("offset", 0)))
    except ValueError as exc:
        raise ValidationFailed("'limit' và 'offset' phải là số nguyên.") from exc
    tab = direction or "all"
    qs = document_query(user, tab if tab in DIRECTIONS else "all", args)
    if number := (args.get("number") or "").strip():
        qs = qs.filter(notation__icontains=number[:120])
    total = qs.count()
    items = [d.to_api() for d in qs.skip(offset).limit(limit)]
    return jsonify({"total": total, "limit": limit, "offset": offset, "items": items})


@api_bp.get("/documents/<doc_id>")
@require_auth()
def get_document(doc_id: str) -> Any:
    doc = documents.get_for(api_user(), doc_id)
    body = doc.to_api(detail=True)
    body["state_label"] = engine.state_label(doc)
    return jsonify(body)


@api_bp.get("/documents/<doc_id>/file")
@require_auth()
def get_document_file(doc_id: str) -> Any:
    doc = documents.get_for(api_user(), doc_id, log_view=False)
    rev = request.args.get("rev")
    if rev is not None and not rev.isdigit():
        raise ValidationFailed("'rev' phải là số nguyên.")
    revision = doc.revision(int(rev)) if rev else (doc.current_pdf or doc.current_revision)
    if revision is None:
        abort(404)
    return send_stored(doc, revision, inline=False)


@api_bp.post("/documents")
@require_auth()
def create_document() -> Any:
    user = api_user()
    form: dict[str, Any] = request.form.to_dict()
    direction = form.pop("direction", None)
    if direction not in DIRECTIONS:
        raise ValidationFailed("Trường 'direction' phải là incoming, outgoing hoặc internal.")
    form["recipient_units"] = request.form.getlist("recipient_units")
    main = request.files.get("file")
    extras = request.files.getlist("attachments")
    if direction == "incoming":
        doc = documents.register_incoming(
            user, form, main, extras, confirm_duplicate=form.get("confirm_duplicate") == "1"
        )
    else:
        doc = documents.create_draft(user, form, main, extras, direction=direction)
    return jsonify(doc.to_api(detail=True)), 201


@api_bp.get("/documents/<doc_id>/actions")
@require_auth()
def document_actions(doc_id: str) -> Any:
    user = api_user()
    doc = documents.get_for(user, doc_id, log_view=False)
    return jsonify(
        {
            "state": doc.state,
            "state_label": engine.state_label(doc),
            "version": doc.version,
            "actions": [
                {
                    "code": a.code,
                    "label": a.label,
                    "inputs": a.inputs,
                    "on_behalf_of": a.on_behalf_of,
                }
                for a in engine.available_transitions(doc, user)
            ],
        }
    )


@api_bp.post("/documents/<doc_id>/actions/<code>")
@require_auth()
def perform_action(doc_id: str, code: str) -> Any:
    user = api_user()
    doc: Document = documents.get_for(user, doc_id, log_view=False)
    body = json_body() if request.data else {}
    if signing_kind_for(doc, code, user) is not None:
        raise Conflict(
            "Bước này cần ký số: gọi POST /api/v1/signatures với mã OTP hoặc PIN.",
            code="signature_required",
        )
    version = body.pop("version", None)
    if version is not None and not isinstance(version, int):
        raise ValidationFailed("'version' phải là số nguyên.")
    doc = engine.transition(doc.pk, code, user, body, expected_version=version)
    out = doc.to_api(detail=False)
    out["state_label"] = engine.state_label(doc)
    return jsonify(out)
