"""Internal document screens (inbox, sending, receipts, thread) and their JSON API."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import Admin, expose
from flask_login import current_user
from flask_wtf import FlaskForm

from models.document import URGENCY_LEVELS, Document
from models.user import User
from views.api import api_bp, api_user, json_body, require_auth
from views.base import SecuredBaseView, current_actor
from workflows import engine
from workflows import internal_document as internal
from workflows.errors import DomainError, ValidationFailed


def internal_to_api(doc: Document, user: User) -> dict[str, Any]:
    """The internal document as the API shows it: metadata, receipts, thread, what I may do."""
    body = doc.to_api(detail=True)
    body["content"] = doc.content
    body["state_label"] = engine.state_label(doc)
    body["sender"] = next((h.actor_name for h in doc.history if h.action == "created"), None)
    body["deliveries"] = [d.to_api() for d in internal.receipts(doc, user)]
    body["thread"] = [
        {"id": str(d.pk), "subject": d.subject, "created_at": d.created_at.isoformat()}
        for d in internal.thread(doc, user)
    ]
    body["can_redistribute"] = [
        {
            "unit": str(d.unit.pk),
            "name": d.name,
            "on_behalf_of": p.full_name if p.pk != user.pk else None,
        }
        for d, p in internal.redistributable(doc, user)
    ]
    return body


def _recipients_from(form: Any) -> list[str]:
    return [v for v in form.getlist("recipients") if v]


class InternalDocumentView(SecuredBaseView):
    """Văn bản nội bộ: the inbox, what I sent, sending, forwarding and re-distribution."""

    @expose("/")
    def index(self) -> Any:
        user = self._user()
        box = request.args.get("box", "inbox")
        if box not in ("inbox", "sent"):
            abort(404)
        return self.render(
            "internal_document/list.html",
            box=box,
            received=internal.inbox(user, unread_only=request.args.get("unread") == "1")
            if box == "inbox"
            else [],
            sent=internal.sent_by(user) if box == "sent" else [],
            may_send=internal.may_send(user),
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        user = self._user()
        if not internal.may_send(user):
            abort(403)
        reply_to = request.values.get("reply_to") or None
        parent = None
        if reply_to:
            try:
                parent = internal.get_for(user, reply_to, mark=False)
            except DomainError:
                abort(404)
        form = FlaskForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                flash("Phiên làm việc đã hết hạn. Vui lòng thử lại.", "error")
            else:
                try:
                    doc = internal.send(
                        user,
                        request.form,
                        _recipients_from(request.form),
                        request.files.getlist("files"),
                        number=request.form.get("number") == "1",
                        reply_to=reply_to,
                    )
                except DomainError as exc:
                    flash(exc.message, "error")
                else:
                    sent = doc.state != "draft"
                    flash(
                        "Đã gửi văn bản nội bộ."
                        if sent
                        else "Đã tạo văn bản, chờ duyệt trước khi gửi.",
                        "success",
                    )
                    return redirect(url_for(".detail", doc_id=doc.pk))
        values = request.form if request.method == "POST" else {}
        selected = _recipients_from(request.form)
        if parent is not None and request.method == "GET":
            values = {"subject": f"Trả lời: {parent.subject}"[:2000]}
            selected = [f"user:{parent.created_by_id}"] if parent.created_by_id else []
        return self.render(
            "internal_document/form.html",
            form=form,
            values=values,
            selected=selected,
            parent=parent,
            choices=internal.recipient_choices(),
            urgency_levels=URGENCY_LEVELS,
            numbering=internal.numbering_available(),
        )

    def _get(self, doc_id: str, mark: bool = True) -> Document:
        try:
            return internal.get_for(self._user(), doc_id, mark=mark)
        except DomainError:
            abort(404)

    @expose("/<doc_id>")
    def detail(self, doc_id: str) -> Any:
        doc = self._get(doc_id)
        user = self._user()
        mine = [
            d
            for d in internal.receipts(doc, user)
            if d.user == user or (d.user is None and user.unit is not None and d.unit == user.unit)
        ]
        return self.render(
            "internal_document/detail.html",
            doc=doc,
            state_label=engine.state_label(doc),
            urgency_levels=URGENCY_LEVELS,
            receipts=internal.receipts(doc, user),
            thread=internal.thread(doc, user),
            redistribute=internal.redistributable(doc, user),
            colleagues=[u for u in internal.staff_of(user.unit) if u.pk != user.pk],
            can_forward=bool(mine),
            is_sender=doc.created_by_id == str(user.pk),
            staff_of=internal.staff_of,
            may_send=internal.may_send(user),
        )

    def _post(self, doc_id: str, action: str) -> Any:
        doc = self._get(doc_id, mark=False)
        if not FlaskForm().validate_on_submit():
            flash("Phiên làm việc đã hết hạn. Vui lòng thử lại.", "error")
            return redirect(url_for(".detail", doc_id=doc.pk))
        users = request.form.getlist("users")
        note = request.form.get("note", "")
        try:
            if action == "forward":
                made = internal.forward(doc.pk, self._user(), users, note)
            else:
                made = internal.redistribute(
                    doc.pk, self._user(), users, note, unit_id=request.form.get("unit") or None
                )
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            what = "Đã chuyển tiếp tới" if action == "forward" else "Đã phân phối lại cho"
            flash(f"{what}: {', '.join(d.name for d in made)}.", "success")
        return redirect(url_for(".detail", doc_id=doc.pk))

    @expose("/<doc_id>/forward", methods=("POST",))
    def forward(self, doc_id: str) -> Any:
        return self._post(doc_id, "forward")

    @expose("/<doc_id>/redistribute", methods=("POST",))
    def redistribute(self, doc_id: str) -> Any:
        return self._post(doc_id, "redistribute")


def internal_panel(doc: Document) -> dict[str, Any] | None:
    """Receipts and thread of an internal document, for the document page (marks it read)."""
    if doc.direction != "internal" or not current_user.is_authenticated:
        return None
    user = current_actor()
    internal.mark_read(doc, user)
    return {"receipts": internal.receipts(doc, user), "thread": internal.thread(doc, user)}


def register_internal_documents(admin: Admin) -> None:
    """Add the internal document screens and the document page's panel."""
    admin.add_view(
        InternalDocumentView(
            name="Văn bản nội bộ", endpoint="internal_document", url="/internal-documents"
        )
    )
    assert admin.app is not None
    admin.app.add_template_global(internal_panel, "internal_panel")


# JSON API -----------------------------------------------------------------------------------


def _api_payload() -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Fields, recipients and files from a JSON or a multipart request."""
    if request.mimetype == "multipart/form-data" or request.form:
        data: dict[str, Any] = request.form.to_dict()
        recipients: list[Any] = request.form.getlist("recipients")
        recipients += [f"unit:{u}" for u in request.form.getlist("units")]
        recipients += [f"user:{u}" for u in request.form.getlist("users")]
        return data, recipients, request.files.getlist("files")
    data = json_body()
    raw = data.get("recipients") or []
    if isinstance(raw, dict):
        raw = [f"unit:{u}" for u in raw.get("units") or []] + [
            f"user:{u}" for u in raw.get("users") or []
        ]
    if not isinstance(raw, list):
        raise ValidationFailed("'recipients' phải là danh sách 'unit:<id>' / 'user:<id>'.")
    return data, raw, []


@api_bp.get("/internal-documents")
@require_auth()
def list_internal_documents() -> Any:
    user = api_user()
    box = request.args.get("box", "inbox")
    if box == "inbox":
        items = [
            {**d.document.to_api(), "delivery": d.to_api()}
            for d in internal.inbox(user, unread_only=request.args.get("unread") == "1")
        ]
    elif box == "sent":
        items = [
            {**doc.to_api(), "delivered": delivered, "read": read}
            for doc, delivered, read in internal.sent_by(user)
        ]
    else:
        raise ValidationFailed("Tham số 'box' phải là inbox hoặc sent.")
    return jsonify({"total": len(items), "items": items})


@api_bp.post("/internal-documents")
@require_auth()
def create_internal_document() -> Any:
    user = api_user()
    data, recipients, files = _api_payload()
    number = data.get("number") in (True, "1", "true", "on")
    doc = internal.send(
        user, data, recipients, files, number=number, reply_to=data.get("reply_to") or None
    )
    return jsonify(internal_to_api(doc, user)), 201


@api_bp.get("/internal-documents/<doc_id>")
@require_auth()
def get_internal_document(doc_id: str) -> Any:
    user = api_user()
    doc = internal.get_for(user, doc_id)
    return jsonify(internal_to_api(doc, user))


@api_bp.post("/internal-documents/<doc_id>/forward")
@require_auth()
def forward_internal_document(doc_id: str) -> Any:
    user = api_user()
    data = json_body()
    made = internal.forward(
        doc_id, user, list(data.get("users") or []), str(data.get("note") or "")
    )
    return jsonify({"deliveries": [d.to_api() for d in made]}), 201


@api_bp.post("/internal-documents/<doc_id>/redistribute")
@require_auth()
def redistribute_internal_document(doc_id: str) -> Any:
    user = api_user()
    data = json_body()
    made = internal.redistribute(
        doc_id,
        user,
        list(data.get("users") or []),
        str(data.get("note") or ""),
        unit_id=data.get("unit") or None,
    )
    return jsonify({"deliveries": [d.to_api() for d in made]}), 201
