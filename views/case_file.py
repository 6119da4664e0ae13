"""Case file screens (my files, lists, the records manager's archive) and their JSON API."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from bson import ObjectId
from flask import Flask, Response, abort, flash, jsonify, redirect, request, url_for
from flask_admin import Admin, expose
from flask_login import current_user
from mongoengine import Q

from models.audit import AuditEntry
from models.case_file import (
    CASE_FILE_STATES,
    LIST_STATES,
    TRANSFER_STATES,
    CaseFile,
    CaseFileList,
)
from models.document import DIRECTIONS, Document
from models.organization import Unit
from models.retention import RetentionPeriod
from models.role import Role
from models.user import User
from views.api import api_bp, api_user, json_body, require_auth
from views.base import SecuredBaseView, SecuredModelView, act, current_actor, form_ok
from workflows import case_file as case_files
from workflows.case_file_export import export_pdf, export_xml
from workflows.errors import DomainError, ValidationFailed

PAGE_SIZE = 50
CATEGORY = "Lưu trữ"


def _attachment(data: bytes, filename: str, mime: str) -> Response:
    return Response(
        data,
        mimetype=mime,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",
        },
    )


def _retention_choices() -> list[RetentionPeriod]:
    return list(RetentionPeriod.objects(active=True).order_by("code"))


def _openable_entries(user: User) -> list[tuple[CaseFileList, Any]]:
    """Entries of approved lists `user` may open a file from, not opened yet."""
    approved = list(CaseFileList.objects(state="approved").order_by("-year"))
    opened = CaseFile.objects(year__in=[lst.year for lst in approved]).only("year", "code")
    taken = {(c.year, c.code) for c in opened}
    out = []
    for year_list in approved:
        for entry in year_list.entries:
            if (year_list.year, entry.code) in taken:
                continue
            mine = (entry.owner_user is not None and entry.owner_user.pk == user.pk) or (
                entry.owner_user is None
                and entry.owner_unit is not None
                and user.unit is not None
                and entry.owner_unit.pk == user.unit.pk
            )
            if mine or user.can("archive.manage"):
                out.append((year_list, entry))
    return out


# Everyone: my case files --------------------------------------------------------------------


class CaseFileView(SecuredBaseView):
    """Open case files, put documents in them, close them; transfer for records managers."""

    @expose("/")
    def index(self) -> Any:
        user = current_actor()
        tab = request.args.get("tab", "mine")
        qs = CaseFile.objects.visible_to(user)
        if tab == "mine":
            qs = qs.filter(owner_user=user.pk)
        elif tab == "unit":
            qs = qs.filter(owner_unit=user.unit.pk) if user.unit else qs.none()
        if state := request.args.get("state"):
            qs = qs.filter(state=state)
        return self.render(
            "case_file/index.html",
            tab=tab,
            files=list(qs.order_by("-year", "code").limit(500)),
            states=CASE_FILE_STATES,
            args=request.args,
        )

    @expose("/new", methods=("GET", "POST"))
    def create(self) -> Any:
        user = current_actor()
        if request.method == "POST" and form_ok():
            try:
                if request.form.get("entry"):
                    list_id, _, entry_id = request.form["entry"].partition(":")
                    created = case_files.open_case_file(user, list_id=list_id, entry_id=entry_id)
                else:
                    created = case_files.open_case_file(user, request.form)
            except DomainError as exc:
                flash(exc.message, "error")
            else:
                flash(f"Đã lập hồ sơ {created.code}.", "success")
                return redirect(url_for(".detail", case_file_id=created.pk))
        return self.render(
            "case_file/new.html",
            entries=_openable_entries(user),
            periods=_retention_choices(),
            values=request.form,
        )

    def _get(self, case_file_id: str, log_access: bool = True) -> CaseFile:
        try:
            return case_files.get_case_file(current_actor(), case_file_id, log_access=log_access)
        except DomainError:
            abort(404)

    @expose("/<case_file_id>")
    def detail(self, case_file_id: str) -> Any:
        user = current_actor()
        case_file = self._get(case_file_id)
        query = (request.args.get("q") or "").strip()[:200]
        found: list[Document] = []
        if query and case_file.state == "open" and case_file.can_edit(user):
            from werkzeug.datastructures import MultiDict

            from views.document import document_query

            held = {i.document.pk for i in case_file.items if i.document}
            found = [
                d
                for d in document_query(user, "all", MultiDict({"q": query})).limit(20)
                if d.pk not in held
            ]
        return self.render(
            "case_file/detail.html",
            case_file=case_file,
            rows=case_files.documents_for(user, case_file),
            can_edit=case_file.can_edit(user) and not case_file.frozen,
            can_transfer=user.can("archive.manage")
            and case_file.state == "closed"
            and case_file.transfer_document is None,
            problems=case_files.close_problems(case_file) if case_file.state == "open" else [],
            query=query,
            found=found,
            periods=_retention_choices(),
            states=CASE_FILE_STATES,
            transfer_states=TRANSFER_STATES,
            directions=DIRECTIONS,
            today=case_files.vn_today(),
        )

    def _act(self, case_file_id: str, done: str, operation: Any) -> Any:
        return act(done, operation, url_for(".detail", case_file_id=case_file_id))

    @expose("/<case_file_id>/attach", methods=("POST",))
    def attach(self, case_file_id: str) -> Any:
        doc_id = request.form.get("document_id", "")
        return self._act(
            case_file_id,
            "Đã đưa văn bản vào hồ sơ.",
            lambda: case_files.attach_document(current_actor(), case_file_id, doc_id),
        )

    @expose("/add-document", methods=("POST",))
    def add_document(self) -> Any:
        """Put a document into a file from the document's own page, then go back to it."""
        doc_id = request.form.get("document_id", "")
        if form_ok():
            try:
                case_file = case_files.attach_document(
                    current_actor(), request.form.get("case_file", ""), doc_id
                )
            except DomainError as exc:
                flash(exc.message, "error")
            else:
                flash(f"Đã đưa văn bản vào hồ sơ {case_file.code}.", "success")
        return redirect(url_for("document.detail", doc_id=doc_id))

    @expose("/<case_file_id>/detach/<doc_id>", methods=("POST",))
    def detach(self, case_file_id: str, doc_id: str) -> Any:
        return self._act(
            case_file_id,
            "Đã gỡ văn bản khỏi hồ sơ.",
            lambda: case_files.detach_document(current_actor(), case_file_id, doc_id),
        )

    @expose("/<case_file_id>/edit", methods=("POST",))
    def edit(self, case_file_id: str) -> Any:
        version = request.form.get("version", type=int)
        return self._act(
            case_file_id,
            "Đã lưu thông tin hồ sơ.",
            lambda: case_files.update_case_file(
                current_actor(), case_file_id, request.form, version
            ),
        )

    @expose("/<case_file_id>/close", methods=("POST",))
    def close(self, case_file_id: str) -> Any:
        return self._act(
            case_file_id,
            "Đã kết thúc hồ sơ.",
            lambda: case_files.close_case_file(current_actor(), case_file_id),
        )

    @expose("/<case_file_id>/reopen", methods=("POST",))
    def reopen(self, case_file_id: str) -> Any:
        return self._act(
            case_file_id,
            "Đã mở lại hồ sơ.",
            lambda: case_files.reopen_case_file(current_actor(), case_file_id),
        )

    @expose("/<case_file_id>/transfer", methods=("POST",))
    def transfer(self, case_file_id: str) -> Any:
        comment = request.form.get("comment", "")
        return self._act(
            case_file_id,
            "Đã tiếp nhận hồ sơ vào Lưu trữ cơ quan.",
            lambda: case_files.transfer_case_files(current_actor(), [case_file_id], comment),
        )

    @expose("/<case_file_id>/export.pdf")
    def export_pdf(self, case_file_id: str) -> Any:
        return self._export(case_file_id, export_pdf, "pdf", "application/pdf")

    @expose("/<case_file_id>/export.xml")
    def export_xml(self, case_file_id: str) -> Any:
        return self._export(case_file_id, export_xml, "xml", "application/xml")

    def _export(self, case_file_id: str, build: Any, ext: str, mime: str) -> Any:
        case_file = self._get(case_file_id, log_access=False)
        try:
            data = build(case_file, current_actor())
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".detail", case_file_id=case_file_id))
        if case_file.frozen:
            case_files.log_archive_access(case_file, f"export_{ext}")
        return _attachment(data, f"ho-so-{case_file.full_code()}.{ext}", mime)

    @expose("/<case_file_id>/documents/<doc_id>/file")
    def document_file(self, case_file_id: str, doc_id: str) -> Any:
        """Download a document's PDF through the file (for readers of an archive)."""
        from views.document import send_stored

        user = current_actor()
        case_file = self._get(case_file_id, log_access=False)
        rows = case_files.documents_for(user, case_file)
        doc = next((d for _, d, readable in rows if readable and str(d.pk) == doc_id), None)
        if doc is None or doc.current_pdf is None:
            abort(404)
        if case_file.frozen:
            case_files.log_archive_access(case_file, "download", {"document": doc_id})
        return send_stored(doc, doc.current_pdf, inline=False)


# Lists of case files --------------------------------------------------------------------------


class CaseFileListView(SecuredBaseView):
    """The yearly lists: drafted by the records manager, approved by a leader."""

    @expose("/")
    def index(self) -> Any:
        return self.render(
            "case_file/lists.html", lists=CaseFileList.objects.order_by("-year"), states=LIST_STATES
        )

    @expose("/new", methods=("POST",))
    def create(self) -> Any:
        if form_ok():
            try:
                created = case_files.create_list(
                    current_actor(), request.form.get("year"), request.form.get("title", "")
                )
            except DomainError as exc:
                flash(exc.message, "error")
            else:
                return redirect(url_for(".detail", list_id=created.pk))
        return redirect(url_for(".index"))

    @expose("/<list_id>")
    def detail(self, list_id: str) -> Any:
        try:
            year_list = case_files.get_list(list_id)
        except DomainError:
            abort(404)
        leader_roles = Role.objects(permissions="document.assign")
        return self.render(
            "case_file/list_detail.html",
            year_list=year_list,
            states=LIST_STATES,
            can_edit=current_actor().can("archive.manage") and year_list.state == "draft",
            periods=_retention_choices(),
            units=Unit.objects(active=True),
            users=User.objects(active=True).order_by("full_name"),
            leaders=User.objects(active=True, roles__in=leader_roles),
        )

    def _act(self, list_id: str, done: str, operation: Any) -> Any:
        return act(done, operation, url_for(".detail", list_id=list_id))

    @expose("/<list_id>/entries", methods=("POST",))
    def add_entry(self, list_id: str) -> Any:
        return self._act(
            list_id,
            "Đã thêm hồ sơ vào danh mục.",
            lambda: case_files.add_list_entry(current_actor(), list_id, request.form),
        )

    @expose("/<list_id>/entries/<entry_id>/remove", methods=("POST",))
    def remove_entry(self, list_id: str, entry_id: str) -> Any:
        return self._act(
            list_id,
            "Đã bỏ hồ sơ khỏi danh mục.",
            lambda: case_files.remove_list_entry(current_actor(), list_id, entry_id),
        )

    @expose("/<list_id>/submit", methods=("POST",))
    def submit(self, list_id: str) -> Any:
        return self._act(
            list_id,
            "Đã trình lãnh đạo duyệt danh mục hồ sơ.",
            lambda: case_files.submit_list(
                current_actor(),
                list_id,
                request.form.get("leader"),
                request.form.get("comment", ""),
            ),
        )


# Records manager: the archive -----------------------------------------------------------------


def _id_arg(args: Any, key: str, label: str) -> str | None:
    value = args.get(key) or None
    if value is not None and not ObjectId.is_valid(value):
        raise ValidationFailed(f"{label} không hợp lệ.")
    return value


def archive_query(args: Any) -> Any:
    """Case files filtered by year, list, unit, retention and state."""
    qs = CaseFile.objects
    if year := args.get("year", type=int):
        qs = qs.filter(year=year)
    list_id = args.get("list")
    if list_id == "adhoc":
        qs = qs.filter(source_list=None)
    elif list_id := _id_arg(args, "list", "Danh mục hồ sơ"):
        qs = qs.filter(source_list=list_id)
    if unit := _id_arg(args, "unit", "Đơn vị"):
        qs = qs.filter(owner_unit=unit)
    retention = args.get("retention", "")
    if retention == "permanent":
        qs = qs.filter(retention__permanent=True)
    elif retention.isdigit():
        qs = qs.filter(retention__years=int(retention))
    if state := args.get("state"):
        qs = qs.filter(state=state)
    if q := (args.get("q") or "").strip()[:200]:
        qs = qs.filter(Q(title__icontains=q) | Q(code__icontains=q))
    return qs


class ArchiveView(SecuredBaseView):
    """Browse the archive; what is due, overdue, past its retention; who read what."""

    required_permission = "archive.search"

    def _manager_only(self) -> None:
        if not current_actor().can("archive.manage"):
            abort(403)

    @expose("/")
    def index(self) -> Any:
        try:
            qs = archive_query(request.args).order_by("-year", "code")
        except DomainError as exc:
            flash(exc.message, "error")
            qs = CaseFile.objects.none()
        total = qs.count()
        page = max(1, request.args.get("page", 1, type=int))
        pages = max(1, math.ceil(total / PAGE_SIZE))
        files = list(qs.skip((min(page, pages) - 1) * PAGE_SIZE).limit(PAGE_SIZE))
        years = sorted(CaseFile.objects.distinct("year"), reverse=True)
        retentions = sorted({(bool(p.permanent), p.years or 0) for p in RetentionPeriod.objects})
        return self.render(
            "case_file/archive.html",
            tab="browse",
            files=files,
            total=total,
            page=page,
            pages=pages,
            args=request.args,
            query_args={k: v for k, v in request.args.items() if k != "page"},
            years=years,
            lists=CaseFileList.objects.order_by("-year"),
            units=Unit.objects(active=True),
            retentions=retentions,
            states=CASE_FILE_STATES,
            today=case_files.vn_today(),
        )

    @expose("/due")
    def due(self) -> Any:
        self._manager_only()
        today = case_files.vn_today()
        overdue_only = request.args.get("overdue") == "1"
        qs = CaseFile.objects.awaiting_transfer()
        if overdue_only:
            qs = qs.transfer_overdue(today)
        return self.render(
            "case_file/due.html",
            tab="overdue" if overdue_only else "due",
            files=list(qs.order_by("transfer_due_on")),
            today=today,
        )

    @expose("/transfer", methods=("POST",))
    def transfer(self) -> Any:
        self._manager_only()
        if form_ok():
            try:
                record = case_files.transfer_case_files(
                    current_actor(),
                    request.form.getlist("case_file"),
                    request.form.get("comment", ""),
                )
            except DomainError as exc:
                flash(exc.message, "error")
            else:
                flash(f"Đã tiếp nhận nộp lưu: {record.subject}", "success")
        return redirect(url_for(".due"))

    @expose("/destruction")
    def destruction(self) -> Any:
        self._manager_only()
        today = case_files.vn_today()
        files = CaseFile.objects.retention_ended(today).order_by("retention_ends_on")
        return self.render(
            "case_file/destruction.html", tab="destruction", files=list(files), today=today
        )

    @expose("/access-log")
    def access_log(self) -> Any:
        self._manager_only()
        actions = [f"case_file.{a}" for a in case_files.ACCESS_ACTIONS]
        entries = AuditEntry.objects(object_type="CaseFile", action__in=actions)
        if case_file_id := request.args.get("case_file"):
            entries = entries.filter(object_id=case_file_id)
        return self.render(
            "case_file/access_log.html",
            tab="access",
            entries=list(entries.order_by("-at").limit(500)),
            labels={f"case_file.{k}": v for k, v in case_files.ACCESS_ACTIONS.items()},
        )


class RetentionPeriodView(SecuredModelView):
    """The retention table, kept by the records manager or the organisation admin."""

    column_list = ("code", "group", "title", "years", "permanent", "active")
    column_default_sort = "code"
    column_searchable_list = ("code", "title", "group")
    column_filters = ("group", "permanent", "active")
    form_columns = ("code", "group", "title", "years", "permanent", "source", "active")
    column_labels = {
        "code": "Mã (nhóm.mục)",
        "group": "Nhóm tài liệu",
        "title": "Tên nhóm hồ sơ, tài liệu",
        "years": "Số năm bảo quản",
        "permanent": "Vĩnh viễn",
        "source": "Căn cứ",
        "active": "Đang dùng",
    }

    def is_accessible(self) -> bool:
        return bool(
            current_user.is_authenticated
            and (current_user.can("archive.manage") or current_user.can("admin.organization"))
        )


# The document page: which files hold this document -------------------------------------------


def case_file_panel(doc: Document) -> dict[str, Any]:
    """The files holding a document (that the user sees), and open files to put it in."""
    if not current_user.is_authenticated:
        return {"holding": [], "open_files": []}
    user = current_actor()
    visible = CaseFile.objects.visible_to(user)
    holding = list(visible.holding(doc.pk).only("code", "title", "year", "state"))
    held = {c.pk for c in holding}
    open_files = [
        c
        for c in visible.filter(state="open").order_by("-year", "code").limit(100)
        if c.pk not in held and c.can_edit(user)
    ]
    carried = CaseFileList.objects(approval_document=doc.pk).first()
    transferred = list(CaseFile.objects(transfer_document=doc.pk).only("code", "title"))
    return {
        "holding": holding,
        "open_files": open_files,
        "carried_list": carried,
        "transferred": transferred,
    }


def init_case_file_views(app: Flask, admin: Admin) -> None:
    """Add the case file screens to the portal and the panel to the document page."""
    admin.add_view(
        CaseFileView(
            name="Hồ sơ công việc", category=CATEGORY, endpoint="case_file", url="/case-files"
        )
    )
    admin.add_view(
        CaseFileListView(
            name="Danh mục hồ sơ",
            category=CATEGORY,
            endpoint="case_file_list",
            url="/case-file-lists",
        )
    )
    admin.add_view(
        ArchiveView(name="Kho lưu trữ", category=CATEGORY, endpoint="archive", url="/archive")
    )
    admin.add_view(
        RetentionPeriodView(
            RetentionPeriod,
            name="Bảng thời hạn bảo quản",
            category=CATEGORY,
            endpoint="retention_period",
            url="/retention",
        )
    )
    app.add_template_global(case_file_panel, "case_file_panel")


# JSON API -------------------------------------------------------------------------------------

MAX_LIMIT = 100


def _case_file_body(case_file: CaseFile, user: User) -> dict[str, Any]:
    body = case_file.summary()
    body["items"] = [
        {
            "ordinal": n,
            "readable": readable,
            "document": doc.to_api() if readable else {"id": str(doc.pk)},
        }
        for n, doc, readable in case_files.documents_for(user, case_file)
    ]
    return body


@api_bp.get("/case-files")
@require_auth()
def list_case_files() -> Any:
    user = api_user()
    args = request.args
    try:
        limit = min(MAX_LIMIT, max(1, int(args.get("limit", 20))))
        offset = max(0, int(args.get("offset", 0)))
    except ValueError as exc:
        raise ValidationFailed("'limit' và 'offset' phải là số nguyên.") from exc
    if args.get("state") and args["state"] not in CASE_FILE_STATES:
        raise ValidationFailed("Tham số 'state' phải là open, closed hoặc archived.")
    if args.get("year") and not args["year"].isdigit():
        raise ValidationFailed("Tham số 'year' phải là số năm.")
    qs = archive_query(args).visible_to(user).order_by("-year", "code")
    total = qs.count()
    items = [c.summary() for c in qs.skip(offset).limit(limit)]
    return jsonify({"total": total, "limit": limit, "offset": offset, "items": items})


@api_bp.get("/case-files/<case_file_id>")
@require_auth()
def get_case_file(case_file_id: str) -> Any:
    user = api_user()
    return jsonify(_case_file_body(case_files.get_case_file(user, case_file_id), user))


@api_bp.post("/case-files/<case_file_id>/documents")
@require_auth()
def attach_to_case_file(case_file_id: str) -> Any:
    user = api_user()
    doc_id = json_body().get("document_id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValidationFailed("Cần có 'document_id' (chuỗi ký tự).")
    case_file = case_files.attach_document(user, case_file_id, doc_id)
    return jsonify(_case_file_body(case_file, user)), 201
