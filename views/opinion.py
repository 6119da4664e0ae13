"""Opinion collection screens (ask, answer, extend, close, summary) and their JSON API."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from flask import Response, abort, flash, jsonify, redirect, request, url_for
from flask_admin import Admin, expose
from flask_login import current_user
from flask_wtf import FlaskForm

from models.document import Document, StoredFile
from models.opinion import ANSWERS, OpinionRequest, aware
from models.user import User
from views.api import api_bp, api_user, json_body, require_auth
from views.base import SecuredBaseView, current_actor
from workflows import internal_document as internal
from workflows import opinion as opinions
from workflows import opinion_summary as summaries
from workflows.errors import DomainError, Forbidden, ValidationFailed

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def request_to_api(req: OpinionRequest, user: User) -> dict[str, Any]:
    """The request as `user` may see it, with what they may do on it."""
    body = req.to_api(opinions.shown_answers(req, user))
    body["state_label"] = opinions.state_label(req)
    body["can_answer"] = [
        {
            "key": t.key,
            "name": t.name,
            "on_behalf_of": a.principal.full_name if a.on_behalf else None,
            "answer": t.answer,
            "comment": t.comment,
        }
        for t, a in opinions.answerable(req, user)
    ]
    body["actions"] = opinions.available_actions(req, user)
    return body


def _local_input(value: dt.datetime | None) -> str:
    """A stored time as the value of a datetime-local input (Vietnam time)."""
    if value is None:
        return ""
    return aware(value).astimezone(opinions.VN_TZ).strftime("%Y-%m-%dT%H:%M")


def _source_for(user: User, doc_id: str | None) -> Document | None:
    if not doc_id:
        return None
    from workflows import document as documents

    try:
        doc = documents.get_for(user, doc_id, log_view=False)
    except DomainError:
        abort(404)
    if doc.closed or doc.migrated:
        raise ValidationFailed("Văn bản đã kết thúc xử lý, không lấy ý kiến được nữa.")
    return doc


def _stream(stored: StoredFile) -> Response:
    from workflows import storage

    handle = storage.open_file(stored.file_id)

    def chunks() -> Any:
        try:
            while block := handle.read(256 * 1024):
                yield block
        finally:
            handle.close()

    return Response(
        chunks(),
        mimetype=stored.mime,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.filename)}",
            "Content-Length": str(stored.size),
            "Cache-Control": "private, no-store",
        },
    )


def _download(data: bytes, filename: str, mime: str) -> Response:
    return Response(
        data,
        mimetype=mime,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",
        },
    )


def summary_download(req: OpinionRequest, fmt: str) -> Response:
    """The summary as a PDF or XLSX download."""
    if fmt == "pdf":
        return _download(
            summaries.summary_pdf(req), f"tong-hop-y-kien-{req.pk}.pdf", "application/pdf"
        )
    if fmt == "xlsx":
        return _download(summaries.summary_xlsx(req), f"tong-hop-y-kien-{req.pk}.xlsx", XLSX_MIME)
    abort(404)


class OpinionView(SecuredBaseView):
    """Lấy ý kiến: requests for me, my requests, answering, and the summary."""

    def _get(self, req_id: str) -> OpinionRequest:
        try:
            return opinions.get_for(self._user(), req_id)
        except DomainError:
            abort(404)

    @expose("/")
    def index(self) -> Any:
        user = self._user()
        box = request.args.get("box", "inbox")
        status = request.args.get("status", "open" if box == "inbox" else "all")
        if box not in ("inbox", "sent") or status not in ("open", "closed", "all"):
            abort(404)
        qs = (opinions.addressed_to if box == "inbox" else opinions.requested_by)(user, status)
        items = list(qs.limit(200))
        return self.render(
            "opinion/list.html",
            box=box,
            status=status,
            items=items,
            answerable={str(r.pk): opinions.answerable(r, user) for r in items},
            state_label=opinions.state_label,
            may_send=internal.may_send(user),
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        user = self._user()
        if not internal.may_send(user):
            abort(403)
        form = FlaskForm()
        source_id = request.values.get("document") or None
        try:
            source = _source_for(user, source_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for("document.detail", doc_id=source_id))
        if request.method == "POST":
            if not form.validate_on_submit():
                flash("Phiên làm việc đã hết hạn. Vui lòng thử lại.", "error")
            else:
                try:
                    req = opinions.create_request(
                        user,
                        request.form,
                        request.form.getlist("recipients"),
                        request.files.getlist("files"),
                        source_document=source,
                        inherited_files=opinions.document_files(source) if source else (),
                    )
                except DomainError as exc:
                    flash(exc.message, "error")
                else:
                    flash("Đã gửi lấy ý kiến.", "success")
                    return redirect(url_for(".detail", req_id=req.pk))
        values: Any = request.form
        if request.method == "GET":
            values = {"subject": source.subject if source else ""}
        return self.render(
            "opinion/form.html",
            form=form,
            values=values,
            selected=request.form.getlist("recipients"),
            source=source,
            choices=internal.recipient_choices(),
        )

    @expose("/<req_id>")
    def detail(self, req_id: str) -> Any:
        req = self._get(req_id)
        user = self._user()
        shown = opinions.shown_answers(req, user)
        return self.render(
            "opinion/detail.html",
            req=req,
            state_label=opinions.state_label(req),
            answerable=opinions.answerable(req, user),
            moves={m["code"]: m for m in opinions.available_actions(req, user)},
            shown=shown,
            answers=ANSWERS,
            may_summary=opinions.may_see_summary(req, user),
            deadline_value=_local_input(req.deadline_at),
            now=dt.datetime.now(dt.UTC),
            aware=aware,
        )

    def _check_form(self, req: OpinionRequest) -> Any:
        if not FlaskForm().validate_on_submit():
            flash("Phiên làm việc đã hết hạn. Vui lòng tải lại trang.", "error")
            return redirect(url_for(".detail", req_id=req.pk))
        return None

    @expose("/<req_id>/answer", methods=("POST",))
    def answer(self, req_id: str) -> Any:
        req = self._get(req_id)
        if (bad := self._check_form(req)) is not None:
            return bad
        try:
            opinions.answer(
                req.pk,
                self._user(),
                request.form.get("answer", ""),
                request.form.get("comment", ""),
                file=request.files.get("file"),
                target_key=request.form.get("target") or None,
            )
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đã ghi nhận ý kiến.", "success")
        return redirect(url_for(".detail", req_id=req.pk))

    @expose("/<req_id>/extend", methods=("POST",))
    def extend(self, req_id: str) -> Any:
        req = self._get(req_id)
        if (bad := self._check_form(req)) is not None:
            return bad
        try:
            req = opinions.extend(
                req.pk, self._user(), request.form.get("deadline"), request.form.get("comment", "")
            )
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Đã gia hạn đến {opinions.vn_time(req.deadline_at)}.", "success")
        return redirect(url_for(".detail", req_id=req.pk))

    @expose("/<req_id>/close", methods=("POST",))
    def close(self, req_id: str) -> Any:
        req = self._get(req_id)
        if (bad := self._check_form(req)) is not None:
            return bad
        try:
            opinions.close(req.pk, self._user(), request.form.get("comment", ""))
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".detail", req_id=req.pk))
        flash("Đã kết thúc lấy ý kiến.", "success")
        return redirect(url_for(".summary", req_id=req.pk))

    @expose("/<req_id>/summary")
    def summary(self, req_id: str) -> Any:
        req = self._get(req_id)
        if not opinions.may_see_summary(req, self._user()):
            abort(403)
        return self.render(
            "opinion/summary.html",
            req=req,
            rows=summaries.summary_rows(req),
            text=summaries.summary_text(req),
            state_label=opinions.state_label(req),
        )

    @expose("/<req_id>/summary.<fmt>")
    def summary_file(self, req_id: str, fmt: str) -> Any:
        req = self._get(req_id)
        if not opinions.may_see_summary(req, self._user()):
            abort(403)
        return summary_download(req, fmt)

    @expose("/<req_id>/file/<int:index>")
    def file(self, req_id: str, index: int) -> Any:
        req = self._get(req_id)
        if not 0 <= index < len(req.files):
            abort(404)
        return _stream(req.files[index])

    @expose("/<req_id>/answer-file/<key>")
    def answer_file(self, req_id: str, key: str) -> Any:
        req = self._get(req_id)
        shown = opinions.shown_answers(req, self._user())
        target = req.target(key)
        if target is None or target.file is None or (shown is not None and key not in shown):
            abort(404)
        return _stream(target.file)


def opinion_panel(doc: Document) -> dict[str, Any] | None:
    """Opinion requests opened from a document, for the document page."""
    if not current_user.is_authenticated:
        return None
    user = current_actor()
    found = [
        r for r in OpinionRequest.objects(source_document=doc.pk) if opinions.can_view(r, user)
    ]
    may_ask = not doc.closed and not doc.migrated and internal.may_send(user)
    if not found and not may_ask:
        return None
    return {"requests": found, "may_ask": may_ask, "state_label": opinions.state_label}


def register_opinions(admin: Admin) -> None:
    """Add the opinion screens and the document page's panel."""
    admin.add_view(OpinionView(name="Lấy ý kiến", endpoint="opinion", url="/opinions"))
    assert admin.app is not None
    admin.app.add_template_global(opinion_panel, "opinion_panel")


# JSON API -----------------------------------------------------------------------------------


def _payload() -> tuple[dict[str, Any], Any]:
    """Fields and the uploaded file of a JSON or multipart request."""
    if request.mimetype == "multipart/form-data" or request.form:
        data: dict[str, Any] = request.form.to_dict()
        data["recipients"] = request.form.getlist("recipients")
        return data, request.files
    return json_body(), None


@api_bp.get("/opinions")
@require_auth()
def list_opinions() -> Any:
    user = api_user()
    box = request.args.get("box", "inbox")
    if box not in ("inbox", "sent"):
        raise ValidationFailed("Tham số 'box' phải là inbox hoặc sent.")
    status = request.args.get("status")
    qs = (opinions.addressed_to if box == "inbox" else opinions.requested_by)(user, status)
    try:
        limit = min(100, max(1, int(request.args.get("limit", 50))))
        offset = max(0, int(request.args.get("offset", 0)))
    except ValueError as exc:
        raise ValidationFailed("'limit' và 'offset' phải là số nguyên.") from exc
    total = qs.count()
    items = [request_to_api(r, user) for r in qs.skip(offset).limit(limit)]
    return jsonify({"total": total, "limit": limit, "offset": offset, "items": items})


@api_bp.post("/opinions")
@require_auth()
def create_opinion() -> Any:
    user = api_user()
    data, files = _payload()
    source = None
    if data.get("source_document"):
        from workflows import document as documents

        source = documents.get_for(user, data["source_document"], log_view=False)
    req = opinions.create_request(
        user,
        data,
        data.get("recipients") or [],
        files.getlist("files") if files else (),
        source_document=source,
        inherited_files=opinions.document_files(source) if source else (),
    )
    return jsonify(request_to_api(req, user)), 201


@api_bp.get("/opinions/<req_id>")
@require_auth()
def get_opinion(req_id: str) -> Any:
    user = api_user()
    return jsonify(request_to_api(opinions.get_for(user, req_id), user))


@api_bp.post("/opinions/<req_id>/answer")
@require_auth()
def answer_opinion(req_id: str) -> Any:
    user = api_user()
    req = opinions.get_for(user, req_id)
    data, files = _payload()
    choice = data.get("answer")
    if not isinstance(choice, str):
        raise ValidationFailed("Cần 'answer': agree, disagree hoặc other.")
    req = opinions.answer(
        req.pk,
        user,
        choice,
        str(data.get("comment") or ""),
        file=files.get("file") if files else None,
        target_key=data.get("target") or None,
    )
    return jsonify(request_to_api(req, user))


@api_bp.post("/opinions/<req_id>/extend")
@require_auth()
def extend_opinion(req_id: str) -> Any:
    user = api_user()
    req = opinions.get_for(user, req_id)
    data = json_body()
    req = opinions.extend(req.pk, user, data.get("deadline"), str(data.get("comment") or ""))
    return jsonify(request_to_api(req, user))


@api_bp.post("/opinions/<req_id>/close")
@require_auth()
def close_opinion(req_id: str) -> Any:
    user = api_user()
    req = opinions.get_for(user, req_id)
    data = json_body() if request.data else {}
    req = opinions.close(req.pk, user, str(data.get("comment") or ""))
    return jsonify(request_to_api(req, user))


@api_bp.get("/opinions/<req_id>/summary")
@require_auth()
def opinion_summary(req_id: str) -> Any:
    user = api_user()
    req = opinions.get_for(user, req_id)
    if not opinions.may_see_summary(req, user):
        raise Forbidden("Bạn không được xem bảng tổng hợp ý kiến này.")
    fmt = request.args.get("format", "json")
    if fmt in ("pdf", "xlsx"):
        return summary_download(req, fmt)
    if fmt != "json":
        raise ValidationFailed("Tham số 'format' phải là json, pdf hoặc xlsx.")
    return jsonify(
        {
            "text": summaries.summary_text(req),
            "counts": req.counts,
            "rows": summaries.summary_rows(req),
        }
    )
