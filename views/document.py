"""Document screens: lists and inbox, registration, drafting, the document page, files."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from mongoengine import Q

from models.document import (
    ASSIGNMENT_ROLES,
    CHANNELS,
    DIRECTIONS,
    SIGNER_AUTHORITIES,
    URGENCY_LEVELS,
    Document,
)
from models.document_type import DocumentType
from models.organization import Unit
from models.role import Role
from models.user import SECRECY_LEVELS, User
from views.base import SecuredBaseView
from workflows import document as documents
from workflows import engine
from workflows.document import DuplicateWarning
from workflows.errors import DomainError
from workflows.rules import principals_of
from workflows.signature import signing_kind_for

PAGE_SIZE = 30
TABS = {
    "inbox": "Việc cần xử lý",
    "done": "Đã xử lý",
    "watching": "Theo dõi",
    "incoming": "Văn bản đến",
    "outgoing": "Văn bản đi",
    "internal": "Văn bản nội bộ",
}


def document_query(user: User, tab: str, args: Any) -> Any:
    """The documents of a list tab, filtered by the request's arguments."""
    base = Document.objects.visible_to(user)
    uid = str(user.pk)
    if tab == "inbox":
        qs = Document.objects.awaiting(principals_of(user)).filter(secrecy__lte=user.clearance or 0)
    elif tab == "done":
        qs = base.handled_by(uid)
    elif tab == "watching":
        qs = base.watched_by(uid)
    elif tab in DIRECTIONS:
        qs = base.filter(direction=tab)
    else:
        qs = base
    if q := (args.get("q") or "").strip()[:200]:
        qs = qs.filter(
            Q(subject__icontains=q)
            | Q(notation__icontains=q)
            | Q(issuer__icontains=q)
            | Q(legacy_id__icontains=q)
        )
    if state := args.get("state"):
        qs = qs.filter(state=state)
    if year := args.get("year", type=int):
        start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        qs = qs.filter(created_at__gte=start, created_at__lt=start.replace(year=year + 1))
    if args.get("urgency", type=int) is not None:
        qs = qs.filter(urgency=args.get("urgency", type=int))
    if args.get("migrated") in ("0", "1"):
        qs = qs.filter(migrated=args.get("migrated") == "1")
    if args.get("due") == "overdue":
        qs = qs.overdue()
    elif args.get("due") == "soon":
        qs = qs.due_soon()
    return qs.order_by("-created_at")


def due_badge(doc: Document, now: dt.datetime) -> tuple[str, str] | None:
    """Return (css class, text) for a due-soon or overdue badge."""
    if doc.closed or doc.due_at is None:
        return None
    due = doc.due_at if doc.due_at.tzinfo else doc.due_at.replace(tzinfo=dt.UTC)
    if due < now:
        return "badge-danger", "Quá hạn"
    if due < now + dt.timedelta(days=2):
        return "badge-warning", "Sắp đến hạn"
    return None


def assignee_choices() -> list[tuple[str, str]]:
    units = [(f"unit:{u.pk}", f"Đơn vị: {u.name}") for u in Unit.objects(active=True)]
    users = [
        (f"user:{u.pk}", f"{u.full_name} ({u.unit.abbreviation if u.unit else ''})")
        for u in User.objects(active=True)
    ]
    return units + users


def leaders() -> list[User]:
    roles = Role.objects(permissions="document.assign")
    return list(User.objects(active=True, roles__in=roles))


def signers() -> list[User]:
    roles = Role.objects(permissions="document.sign")
    return list(User.objects(active=True, roles__in=roles))


def collect_inputs(form: Any) -> dict[str, Any]:
    """Turn a transition form's fields into engine inputs."""
    inputs: dict[str, Any] = {}
    for key in ("comment", "reason", "report", "leader", "signing_code"):
        if form.get(key):
            inputs[key] = form.get(key)
    if form.get("deadline"):
        inputs["deadline"] = form.get("deadline")
    assignees = []
    deadline = form.get("assign_deadline") or None
    for role in ("lead", "coordinate", "info"):
        for value in form.getlist(f"assign_{role}"):
            kind, _, ident = value.partition(":")
            if kind in ("unit", "user") and ident:
                assignees.append(
                    {"role": role, kind: ident, "deadline": deadline if role != "info" else None}
                )
    if assignees or "assign_lead" in form:
        inputs["assignees"] = assignees
    return inputs


class DocumentView(SecuredBaseView):
    """Everything a clerk, a specialist and a leader do with documents every day."""

    @expose("/")
    def index(self) -> Any:
        user = self._user()
        tab = request.args.get("tab", "inbox")
        if tab not in TABS:
            abort(404)
        qs = document_query(user, tab, request.args)
        total = qs.count()
        page = max(1, request.args.get("page", 1, type=int))
        pages = max(1, math.ceil(total / PAGE_SIZE))
        docs = list(qs.skip((min(page, pages) - 1) * PAGE_SIZE).limit(PAGE_SIZE))
        now = dt.datetime.now(dt.UTC)
        counts = {
            "inbox": Document.objects.awaiting(principals_of(user))
            .filter(secrecy__lte=user.clearance or 0)
            .count()
        }
        return self.render(
            "document/list.html",
            tab=tab,
            tabs=TABS,
            docs=docs,
            total=total,
            page=page,
            pages=pages,
            now=now,
            due_badge=due_badge,
            counts=counts,
            args=request.args,
            state_label=engine.state_label,
            directions=DIRECTIONS,
            urgency_levels=URGENCY_LEVELS,
            query_args={k: v for k, v in request.args.items() if k != "page"},
        )

    # Creation ---------------------------------------------------------------------------

    def _form_context(self, direction: str) -> dict[str, Any]:
        return {
            "direction": direction,
            "doc_types": DocumentType.objects(active=True),
            "units": Unit.objects(active=True),
            "signers": signers(),
            "urgency_levels": URGENCY_LEVELS,
            "secrecy_levels": {
                k: v for k, v in SECRECY_LEVELS.items() if k <= (self._user().clearance or 0)
            },
            "authorities": SIGNER_AUTHORITIES,
            "channels": CHANNELS,
        }

    @expose("/new/<direction>", methods=("GET", "POST"))
    def create(self, direction: str) -> Any:
        if direction not in DIRECTIONS:
            abort(404)
        user = self._user()
        needed = (
            "document.register_incoming" if direction == "incoming" else "document.create_draft"
        )
        if not user.can(needed):
            abort(403)
        form = FlaskForm()
        duplicate = None
        if request.method == "POST" and form.validate_on_submit():
            data: dict[str, Any] = request.form.to_dict()
            data["recipient_units"] = request.form.getlist("recipient_units")
            main = request.files.get("main_file")
            extras = request.files.getlist("attachments")
            try:
                if direction == "incoming":
                    doc = documents.register_incoming(
                        user,
                        data,
                        main,
                        extras,
                        confirm_duplicate=request.form.get("confirm_duplicate") == "1",
                    )
                else:
                    doc = documents.create_draft(user, data, main, extras, direction=direction)
            except DuplicateWarning as exc:
                duplicate = exc
                flash(exc.message, "warning")
            except DomainError as exc:
                flash(exc.message, "error")
            else:
                what = (
                    f"Đã vào sổ văn bản đến, số đến {doc.arrival_number}."
                    if direction == "incoming"
                    else "Đã tạo dự thảo."
                )
                flash(what, "success")
                return redirect(url_for(".detail", doc_id=doc.pk))
        elif request.method == "POST":
            flash(
                "Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ. Vui lòng thử lại.", "error"
            )
        return self.render(
            "document/form.html",
            form=form,
            values=request.form,
            duplicate=duplicate,
            title=DIRECTIONS[direction],
            **self._form_context(direction),
        )

    # The document page ------------------------------------------------------------------

    def _get(self, doc_id: str, log_view: bool = True) -> Document:
        try:
            return documents.get_for(self._user(), doc_id, log_view=log_view)
        except DomainError:
            abort(404)

    @expose("/<doc_id>")
    def detail(self, doc_id: str) -> Any:
        doc = self._get(doc_id)
        user = self._user()
        available = [
            a
            for a in engine.available_transitions(doc, user)
            if signing_kind_for(doc, a.code, user) is None
        ]
        users_by_id = {str(u.pk): u for u in User.objects(pk__in=self._people(doc))}
        return self.render(
            "document/detail.html",
            doc=doc,
            available=available,
            form=FlaskForm(),
            state_label=engine.state_label(doc),
            urgency_levels=URGENCY_LEVELS,
            secrecy_levels=SECRECY_LEVELS,
            directions=DIRECTIONS,
            channels=CHANNELS,
            assignment_roles=ASSIGNMENT_ROLES,
            users_by_id=users_by_id,
            assignee_choices=assignee_choices(),
            leaders=leaders(),
            due=due_badge(doc, dt.datetime.now(dt.UTC)),
            watching=str(user.pk) in doc.watcher_ids,
            can_edit=not doc.migrated
            and doc.state in documents.EDITABLE_STATES.get(doc.direction, ())
            and (
                doc.created_by_id == str(user.pk)
                or (doc.direction == "incoming" and user.can("document.register_incoming"))
            ),
            can_change_circuit=doc.circuit is not None
            and doc.circuit.status == "draft"
            and doc.created_by_id == str(user.pk)
            and not doc.migrated,
            all_users=User.objects(active=True),
        )

    def _people(self, doc: Document) -> list[str]:
        ids = set(doc.visible_user_ids)
        if doc.circuit:
            ids.update(u for s in doc.circuit.steps for u in s.user_ids + s.done_by)
        return sorted(ids)

    @expose("/<doc_id>/action/<code>", methods=("POST",))
    def act(self, doc_id: str, code: str) -> Any:
        doc = self._get(doc_id, log_view=False)
        if not FlaskForm().validate_on_submit():
            flash("Phiên làm việc đã hết hạn. Vui lòng tải lại trang.", "error")
            return redirect(url_for(".detail", doc_id=doc.pk))
        if signing_kind_for(doc, code, self._user()) is not None:
            flash("Bước này cần ký số: nhập mã OTP hoặc PIN ở ô ký số.", "error")
            return redirect(url_for(".detail", doc_id=doc.pk))
        try:
            engine.transition(
                doc.pk,
                code,
                self._user(),
                collect_inputs(request.form),
                expected_version=request.form.get("version", type=int),
            )
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đã thực hiện.", "success")
        return redirect(url_for(".detail", doc_id=doc.pk))

    @expose("/<doc_id>/circuit/<int:index>", methods=("POST",))
    def circuit_people(self, doc_id: str, index: int) -> Any:
        doc = self._get(doc_id, log_view=False)
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            engine.set_step_people(doc.pk, index, request.form.getlist("users"), self._user())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đã đổi người ở bước trình ký.", "success")
        return redirect(url_for(".detail", doc_id=doc.pk))

    @expose("/<doc_id>/edit", methods=("GET", "POST"))
    def edit(self, doc_id: str) -> Any:
        doc = self._get(doc_id, log_view=False)
        form = FlaskForm()
        if request.method == "POST" and form.validate_on_submit():
            data: dict[str, Any] = request.form.to_dict()
            data["recipient_units"] = request.form.getlist("recipient_units")
            try:
                documents.update_metadata(
                    doc.pk, self._user(), data, request.form.get("version", type=int) or 0
                )
            except DomainError as exc:
                flash(exc.message, "error")
                return self.render(
                    "document/form.html",
                    form=form,
                    values=request.form,
                    duplicate=None,
                    title="Sửa thông tin văn bản",
                    doc=doc,
                    **self._form_context(doc.direction),
                )
            flash("Đã lưu thông tin văn bản.", "success")
            return redirect(url_for(".detail", doc_id=doc.pk))
        values = {
            "subject": doc.subject,
            "notation": doc.notation or "",
            "issuer": doc.issuer or "",
            "doc_type": str(doc.doc_type.pk) if doc.doc_type else "",
            "issued_on": doc.issued_on.isoformat() if doc.issued_on else "",
            "deadline_on": doc.deadline_on.isoformat() if doc.deadline_on else "",
            "urgency": str(doc.urgency),
            "secrecy": str(doc.secrecy),
            "signer": str(doc.signer.pk) if doc.signer else "",
            "signer_authority": doc.signer_authority,
            "signer_title": doc.signer_title or "",
            "signer_name": doc.signer_name or "",
            "place": doc.place or "",
            "recipients_to": "\n".join(doc.recipients_to),
            "recipients": "\n".join(doc.recipients),
            "channel": doc.channel or "paper",
            "pages": doc.pages or "",
            "copies": doc.copies or "",
            "content": doc.content or "",
        }
        return self.render(
            "document/form.html",
            form=form,
            values=values,
            duplicate=None,
            title="Sửa thông tin văn bản",
            doc=doc,
            selected_units=[str(u.pk) for u in doc.recipient_units],
            **self._form_context(doc.direction),
        )

    @expose("/<doc_id>/comment", methods=("POST",))
    def comment(self, doc_id: str) -> Any:
        doc = self._get(doc_id, log_view=False)
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            documents.add_comment(doc.pk, self._user(), request.form.get("text", ""))
        except DomainError as exc:
            flash(exc.message, "error")
        return redirect(url_for(".detail", doc_id=doc.pk) + "#comments")

    @expose("/<doc_id>/watch", methods=("POST",))
    def watch(self, doc_id: str) -> Any:
        doc = self._get(doc_id, log_view=False)
        if not FlaskForm().validate_on_submit():
            abort(400)
        documents.set_watching(doc.pk, self._user(), request.form.get("on") == "1")
        return redirect(url_for(".detail", doc_id=doc.pk))

    @expose("/<doc_id>/file")
    def file(self, doc_id: str) -> Any:
        doc = self._get(doc_id, log_view=False)
        rev = request.args.get("rev", type=int)
        revision = doc.revision(rev) if rev else (doc.current_pdf or doc.current_revision)
        if revision is None:
            abort(404)
        return send_stored(doc, revision, inline=request.args.get("inline") == "1")

    @expose("/<doc_id>/attachment/<int:index>")
    def attachment(self, doc_id: str, index: int) -> Any:
        doc = self._get(doc_id, log_view=False)
        if not 0 <= index < len(doc.attachments):
            abort(404)
        return send_stored(doc, doc.attachments[index], inline=False)


def send_stored(doc: Document, stored: Any, inline: bool) -> Response:
    """Stream a stored file to the browser, audited for secret documents."""
    from urllib.parse import quote

    from models import audit
    from workflows import storage

    if (doc.secrecy or 0) > 0:
        audit.record("document.download", obj=doc, detail={"file": stored.filename})
    stream = storage.open_file(stored.file_id)

    def chunks() -> Any:
        try:
            while block := stream.read(256 * 1024):
                yield block
        finally:
            stream.close()

    disposition = "inline" if inline and stored.mime == "application/pdf" else "attachment"
    return Response(
        chunks(),
        mimetype=stored.mime,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(stored.filename)}",
            "Content-Length": str(stored.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
