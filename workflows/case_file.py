"""Case files: the yearly list and its approval, opening, attaching, closing, transfer.

Approval and transfer are workflow steps, so admins edit them like every other flow: each is
carried by an internal document on the `case_file` workflow (workflows/definitions/
case_file.yaml). The yearly list goes to a leader as a decision (QĐ) carrying it; closed
files go to the agency archive with a hand-over record (BB) listing them. The actions below
(`submit_case_file_list`, `approve_case_file_list`, `return_case_file_list`,
`transfer_case_file`, `release_case_file_records`) change the list or the files the carrier
points at, with a compare-and-set write undone if the transition fails afterwards. Carrying
them on real documents gives the leader the usual inbox, delegation, history and audit, and
the records themselves (the approved list, the hand-over record) are documents of the agency
worth keeping. Opening, attaching and closing are a file's own edits, not workflow steps.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from bson import ObjectId
from mongoengine.errors import NotUniqueError

from models import audit
from models.audit import utcnow
from models.case_file import (
    CODE_REGEX,
    CaseFile,
    CaseFileItem,
    CaseFileList,
    CaseFileListEntry,
    Retention,
)
from models.document import Document, HistoryEntry
from models.document_type import DocumentType
from models.organization import Agency, Unit
from models.retention import COMMON_PERIODS, RetentionPeriod, retention_ends, transfer_deadline
from models.user import User
from workflows import actions, engine
from workflows.actions import VN_TZ, ActionContext
from workflows.document import get_for, parse_date, refresh_access
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed
from workflows.search import queue_update
from workflows.workflow_definition import definition_for, version_spec

log = logging.getLogger(__name__)

LIST_CARRIER_TYPE = "QĐ"  # the decision that carries the yearly list to the leader
TRANSFER_CARRIER_TYPE = "BB"  # the hand-over record that carries a transfer
DRAFT_STATES = frozenset({"draft"})
CANCELLED_STATES = frozenset({"cancelled"})


class FrozenCaseFile(Forbidden):
    code = "case_file_frozen"
    message = "Hồ sơ đã nộp lưu vào Lưu trữ cơ quan: chỉ được xem, không sửa được."


class CaseFileNotOpen(Conflict):
    code = "case_file_closed"
    message = "Hồ sơ đã kết thúc. Mở lại hồ sơ nếu cần bổ sung hoặc gỡ văn bản."


class AlreadyTransferred(Conflict):
    code = "already_transferred"
    message = "Hồ sơ đã được nộp lưu, không nộp lại được."


def vn_today(now: dt.datetime | None = None) -> dt.date:
    """Return today's date in Vietnam."""
    return (now or utcnow()).astimezone(VN_TZ).date()


def _text(data: Mapping[str, Any], key: str, limit: int, label: str) -> str:
    value = unicodedata.normalize("NFC", str(data.get(key) or "")).strip()
    if len(value) > limit:
        raise ValidationFailed(f"{label} dài quá {limit} ký tự.")
    return value


def _code(data: Mapping[str, Any]) -> str:
    code = _text(data, "code", 40, "Số, ký hiệu hồ sơ")
    if not code:
        raise ValidationFailed("Vui lòng nhập số, ký hiệu hồ sơ (ví dụ 01.TCCB).")
    if not re.match(CODE_REGEX, code):
        raise ValidationFailed(
            "Số, ký hiệu hồ sơ chỉ gồm chữ, số và các dấu . - / _ (ví dụ 01.TCCB)."
        )
    return code


def retention_from_table(code: Any) -> Retention:
    """Return a retention snapshot of a row of the retention table."""
    period = RetentionPeriod.objects(code=str(code or ""), active=True).first()
    if period is None:
        raise ValidationFailed("Vui lòng chọn thời hạn bảo quản trong bảng thời hạn.")
    return Retention(code=period.code, years=period.years, permanent=bool(period.permanent))


def _ref(model: Any, value: Any, label: str) -> Any:
    if value in (None, ""):
        return None
    found = model.objects(pk=value).first() if ObjectId.is_valid(str(value)) else None
    if found is None:
        raise ValidationFailed(f"{label} không tồn tại.")
    return found


# The yearly list ------------------------------------------------------------------------------


def _require_manager(actor: User) -> None:
    if not actor.can("archive.manage"):
        raise Forbidden("Chỉ người quản lý lưu trữ được lập danh mục hồ sơ.")


def get_list(list_id: Any) -> CaseFileList:
    """Return a list of case files (every signed-in user may read the lists)."""
    found = CaseFileList.objects(pk=list_id).first() if ObjectId.is_valid(str(list_id)) else None
    if found is None:
        raise NotFound("Không tìm thấy danh mục hồ sơ.")
    return found


def create_list(actor: User, year: Any, title: str = "") -> CaseFileList:
    """Start the list of case files of a year."""
    _require_manager(actor)
    try:
        year_value = int(year)
    except (TypeError, ValueError):
        year_value = 0
    if not 2000 <= year_value <= 2100:
        raise ValidationFailed("Năm của danh mục hồ sơ không hợp lệ.")
    agency = Agency.current()
    default = f"Danh mục hồ sơ năm {year_value}" + (f" của {agency.name}" if agency else "")
    title = unicodedata.normalize("NFC", title or "").strip()[:500] or default
    try:
        return CaseFileList(year=year_value, title=title, created_by_id=str(actor.pk)).save()
    except NotUniqueError as exc:
        raise Conflict(f"Đã có danh mục hồ sơ năm {year_value}.") from exc


def _editable_list(actor: User, list_id: Any) -> CaseFileList:
    _require_manager(actor)
    found = get_list(list_id)
    if found.state != "draft":
        raise Conflict("Danh mục đã trình hoặc đã được duyệt, không sửa được.")
    return found


def add_list_entry(actor: User, list_id: Any, data: Mapping[str, Any]) -> CaseFileList:
    """Add a planned case file to a list that is still being drafted."""
    found = _editable_list(actor, list_id)
    code = _code(data)
    title = _text(data, "title", 500, "Tiêu đề hồ sơ")
    problems = []
    if not title:
        problems.append("Vui lòng nhập tiêu đề hồ sơ.")
    if any(e.code == code for e in found.entries):
        problems.append(f"Số, ký hiệu {code} đã có trong danh mục.")
    if problems:
        raise ValidationFailed(" ".join(problems))
    unit = _ref(Unit, data.get("owner_unit"), "Đơn vị lập hồ sơ")
    user = _ref(User, data.get("owner_user"), "Người lập hồ sơ")
    if unit is None and user is None:
        raise ValidationFailed("Chọn đơn vị hoặc người lập hồ sơ.")
    entry = CaseFileListEntry(
        code=code,
        title=title,
        retention=retention_from_table(data.get("retention")),
        owner_unit=unit or (user.unit if user else None),
        owner_user=user,
        note=_text(data, "note", 500, "Ghi chú") or None,
    )
    updated = CaseFileList.objects(pk=found.pk, state="draft", version=found.version).update_one(
        push__entries=entry, inc__version=1
    )
    if not updated:
        raise Conflict()
    audit.record("case_file_list.add_entry", obj=found, detail={"code": code})
    return found.reload()


def remove_list_entry(actor: User, list_id: Any, entry_id: Any) -> CaseFileList:
    """Remove a planned case file from a list that is still being drafted."""
    found = _editable_list(actor, list_id)
    entry = found.entry(entry_id)
    if entry is None:
        raise NotFound("Không tìm thấy hồ sơ trong danh mục.")
    updated = CaseFileList.objects(pk=found.pk, state="draft", version=found.version).update_one(
        pull__entries__id=entry.id, inc__version=1
    )
    if not updated:
        raise Conflict()
    audit.record("case_file_list.remove_entry", obj=found, detail={"code": entry.code})
    return found.reload()


def _carrier(actor: User, subject: str, type_abbr: str, content: str, now: dt.datetime) -> Any:
    """Create an internal document on the `case_file` workflow, in its initial state.

    `engine.start` only picks document workflows, so this mirrors it for kind case_file.
    """
    definition = definition_for("internal", type_abbr, kind="case_file")
    if definition is None:
        raise ValidationFailed("Chưa có quy trình hồ sơ lưu trữ nào được ban hành.")
    spec = version_spec(definition.code, definition.published_version)
    doc_type = DocumentType.objects(abbreviation=type_abbr).first()
    agency = Agency.current()
    doc = Document(
        direction="internal",
        doc_type=doc_type,
        doc_type_name=doc_type.name if doc_type else None,
        subject=subject[:2000],
        content=content,
        issuer=agency.name if agency else None,
        issuer_unit=actor.unit,
        created_by_id=str(actor.pk),
        owner_unit_id=str(actor.unit.pk) if actor.unit else None,
        workflow_code=definition.code,
        workflow_version=definition.published_version,
        state=spec["initial_state"],
        state_entered_at=now,
    )
    engine._enter_state(doc, spec, engine._state(spec, doc.state), now)
    doc.history.append(
        HistoryEntry(
            at=now,
            actor_id=str(actor.pk),
            actor_name=actor.full_name,
            action="created",
            label=f"Tạo văn bản ({definition.name}, phiên bản {definition.published_version})",
            to_state=doc.state,
        )
    )
    refresh_access(doc)
    return doc.save()


def _discard_carrier(doc: Any) -> None:
    Document.objects(pk=doc.pk).delete()


def submit_list(
    actor: User, list_id: Any, leader_id: Any, comment: str = "", now: dt.datetime | None = None
) -> Any:
    """Submit a drafted list to a leader; return the decision that carries it."""
    now = now or utcnow()
    found = _editable_list(actor, list_id)
    if not found.entries:
        raise ValidationFailed("Danh mục hồ sơ chưa có hồ sơ nào.")
    lines = [f"{e.code}: {e.title} ({e.retention.label})" for e in found.entries]
    carrier = _carrier(
        actor,
        f"Ban hành {found.title}",
        LIST_CARRIER_TYPE,
        "\n".join(lines),
        now,
    )
    linked = CaseFileList.objects(pk=found.pk, state="draft", version=found.version).update_one(
        set__approval_document=carrier, inc__version=1
    )
    if not linked:
        _discard_carrier(carrier)
        raise Conflict()
    try:
        return engine.transition(
            carrier.pk, "submit", actor, {"leader": leader_id, "comment": comment}, now=now
        )
    except Exception:
        CaseFileList.objects(pk=found.pk, approval_document=carrier).update_one(
            unset__approval_document=True
        )
        _discard_carrier(carrier)
        raise


def _carried_list(ctx: ActionContext, state: str) -> CaseFileList:
    found = CaseFileList.objects(approval_document=ctx.doc.pk).first()
    if found is None:
        raise ValidationFailed("Văn bản này không mang danh mục hồ sơ nào.")
    if found.state != state:
        raise Conflict("Danh mục hồ sơ không còn ở trạng thái cho phép bước này.")
    return found


def _move_list(ctx: ActionContext, found: CaseFileList, to: str, **fields: Any) -> None:
    """Move a list to state `to` with a compare-and-set write, undone on rollback."""
    before = {"state": found.state, "version": found.version}
    sets = {f"set__{k}": v for k, v in fields.items()}
    updated = CaseFileList.objects(pk=found.pk, **before).update_one(
        set__state=to, inc__version=1, **sets
    )
    if not updated:
        raise Conflict("Danh mục hồ sơ vừa được người khác thay đổi. Vui lòng tải lại trang.")
    ctx.on_rollback.append(
        lambda: CaseFileList.objects(pk=found.pk).update_one(
            set__state=before["state"], set__version=before["version"]
        )
    )
    ctx.detail["case_file_list"] = found.title
    ctx.after_commit.append(
        lambda: audit.record(f"case_file_list.{to}", obj=found, detail={"by": ctx.actor.full_name})
    )


@actions.register("submit_case_file_list", "Trình duyệt danh mục hồ sơ", {})
def _submit_list(ctx: ActionContext) -> None:
    found = _carried_list(ctx, "draft")
    if not found.entries:
        raise ValidationFailed("Danh mục hồ sơ chưa có hồ sơ nào.")
    _move_list(ctx, found, "submitted", submitted_at=ctx.now)


@actions.register("approve_case_file_list", "Duyệt danh mục hồ sơ", {})
def _approve_list(ctx: ActionContext) -> None:
    found = _carried_list(ctx, "submitted")
    _move_list(
        ctx,
        found,
        "approved",
        approved_at=ctx.now,
        approved_by_id=str(ctx.principal.pk),
        approved_by_name=ctx.principal.full_name,
    )


@actions.register("return_case_file_list", "Trả lại danh mục hồ sơ để sửa", {})
def _return_list(ctx: ActionContext) -> None:
    _move_list(ctx, _carried_list(ctx, "submitted"), "draft")


@actions.register("release_case_file_records", "Gỡ danh mục, hồ sơ khỏi văn bản bị hủy", {})
def _release(ctx: ActionContext) -> None:
    carrier = ctx.doc.pk

    def release() -> None:
        CaseFileList.objects(approval_document=carrier, state="draft").update(
            unset__approval_document=True
        )
        CaseFile.objects(transfer_document=carrier, state="closed").update(
            unset__transfer_document=True
        )

    ctx.after_commit.append(release)


# Case files ---------------------------------------------------------------------------------


def get_case_file(user: User, case_file_id: Any, *, log_access: bool = True) -> CaseFile:
    """Return a file `user` may open; opening a transferred file is written to the access log."""
    found = (
        CaseFile.objects(pk=case_file_id).first() if ObjectId.is_valid(str(case_file_id)) else None
    )
    if found is None or not found.can_view(user):
        raise NotFound("Không tìm thấy hồ sơ hoặc bạn không có quyền xem.")
    if log_access and found.frozen:
        log_archive_access(found, "view")
    return found


ACCESS_ACTIONS = {
    "view": "Xem hồ sơ",
    "download": "Tải văn bản trong hồ sơ",
    "export_pdf": "Xuất hồ sơ PDF",
    "export_xml": "Xuất siêu dữ liệu XML",
}


def can_read_document(user: User, doc: Document) -> bool:
    """Tell whether `user` may read a document of a file they can open.

    Its own access rules, or an archive right (within the user's clearance): records
    managers read every file they keep.
    """
    from workflows.document import can_view

    if can_view(doc, user):
        return True
    archive_right = user.can("archive.search") or user.can("archive.manage")
    return archive_right and (doc.secrecy or 0) <= (user.clearance or 0)


def documents_for(user: User, case_file: CaseFile) -> list[tuple[int, Document, bool]]:
    """Return (ordinal, document, readable) for every document of the file, in order."""
    out = []
    for n, item in enumerate(case_file.items, 1):
        if isinstance(item.document, Document):  # a DBRef: the document no longer exists
            out.append((n, item.document, can_read_document(user, item.document)))
    return out


def log_archive_access(
    case_file: CaseFile, what: str, detail: dict[str, Any] | None = None
) -> None:
    """Write a view or download of a transferred file to the audit log."""
    audit.record(f"case_file.{what}", obj=case_file, detail=detail or {})


def _editable(user: User, case_file_id: Any) -> CaseFile:
    found = get_case_file(user, case_file_id, log_access=False)
    if found.frozen:
        raise FrozenCaseFile()
    if not found.can_edit(user):
        raise Forbidden("Bạn không có quyền sửa hồ sơ này.")
    return found


def _open_from_entry(actor: User, list_id: Any, entry_id: Any) -> dict[str, Any]:
    source = get_list(list_id)
    if source.state != "approved":
        raise Conflict("Danh mục hồ sơ chưa được duyệt: chưa lập hồ sơ theo danh mục được.")
    entry = source.entry(entry_id)
    if entry is None:
        raise NotFound("Không tìm thấy hồ sơ trong danh mục.")
    mine = (entry.owner_user is not None and entry.owner_user.pk == actor.pk) or (
        entry.owner_user is None
        and entry.owner_unit is not None
        and actor.unit is not None
        and entry.owner_unit.pk == actor.unit.pk
    )
    if not mine and not actor.can("archive.manage"):
        raise Forbidden("Hồ sơ này trong danh mục do người hoặc đơn vị khác lập.")
    return {
        "code": entry.code,
        "title": entry.title,
        "year": source.year,
        "source_list": source,
        "list_entry_id": entry.id,
        "retention": Retention(
            code=entry.retention.code,
            years=entry.retention.years,
            permanent=entry.retention.permanent,
        ),
        "owner_user": entry.owner_user or actor,
        "owner_unit": entry.owner_unit or actor.unit,
    }


def open_case_file(
    actor: User,
    data: Mapping[str, Any] | None = None,
    *,
    list_id: Any = None,
    entry_id: Any = None,
    now: dt.datetime | None = None,
) -> CaseFile:
    """Open a case file from an entry of an approved list, or ad hoc from `data`."""
    now = now or utcnow()
    if list_id or entry_id:
        fields = _open_from_entry(actor, list_id, entry_id)
    else:
        data = data or {}
        code = _code(data)
        title = _text(data, "title", 500, "Tiêu đề hồ sơ")
        if not title:
            raise ValidationFailed("Vui lòng nhập tiêu đề hồ sơ.")
        fields = {
            "code": code,
            "title": title,
            "year": vn_today(now).year,
            "retention": retention_from_table(data.get("retention")),
            "owner_user": actor,
            "owner_unit": actor.unit,
        }
    case_file = CaseFile(opened_at=now, opened_by_id=str(actor.pk), **fields)
    try:
        case_file.save()
    except NotUniqueError as exc:
        raise Conflict(
            f"Hồ sơ số, ký hiệu {fields['code']} năm {fields['year']} đã được lập."
        ) from exc
    log.info("case file opened id=%s code=%s by=%s", case_file.pk, case_file.code, actor.username)
    queue_update([case_file.pk])
    return case_file


def _held_ids(case_file: CaseFile) -> list[str]:
    """Return the ids of the documents a file holds (raw read: nothing is dereferenced)."""
    row = CaseFile._get_collection().find_one({"_id": case_file.pk}, {"items.document": 1})
    return [str(i["document"]) for i in (row or {}).get("items") or [] if i.get("document")]


def _refuse_edit(case_file_id: Any) -> None:
    """Explain why a compare-and-set write on an open file found nothing to change."""
    current = CaseFile.objects(pk=case_file_id).first()
    if current is None:
        raise NotFound("Không tìm thấy hồ sơ hoặc bạn không có quyền xem.")
    if current.frozen:
        raise FrozenCaseFile()
    if current.state != "open":
        raise CaseFileNotOpen()
    raise Conflict("Hồ sơ vừa được người khác thay đổi. Vui lòng tải lại trang.")


def attach_document(actor: User, case_file_id: Any, doc_id: Any) -> CaseFile:
    """Put a document the actor may see into an open file (a reference, never a copy)."""
    case_file = _editable(actor, case_file_id)
    doc = get_for(actor, doc_id, log_view=False)  # NotFound for what the actor cannot see
    if case_file.state != "open":
        raise CaseFileNotOpen()
    if case_file.holds(doc.pk):
        raise Conflict("Văn bản đã có trong hồ sơ.")
    item = CaseFileItem(
        document=doc, added_at=utcnow(), added_by_id=str(actor.pk), added_by_name=actor.full_name
    )
    updated = CaseFile.objects(pk=case_file.pk, state="open", version=case_file.version).update_one(
        push__items=item, inc__version=1
    )
    if not updated:
        _refuse_edit(case_file.pk)
    audit.record("case_file.attach", obj=case_file, detail={"document": str(doc.pk)})
    queue_update([case_file.pk, doc.pk])
    return case_file.reload()


def detach_document(actor: User, case_file_id: Any, doc_id: Any) -> CaseFile:
    """Take a document out of an open file; the document itself is untouched."""
    case_file = _editable(actor, case_file_id)
    if case_file.state != "open":
        raise CaseFileNotOpen()
    if not case_file.holds(doc_id):
        raise NotFound("Văn bản không có trong hồ sơ.")
    updated = CaseFile.objects(pk=case_file.pk, state="open", version=case_file.version).update_one(
        pull__items__document=ObjectId(str(doc_id)), inc__version=1
    )
    if not updated:
        _refuse_edit(case_file.pk)
    audit.record("case_file.detach", obj=case_file, detail={"document": str(doc_id)})
    queue_update([case_file.pk, doc_id])
    return case_file.reload()


def update_case_file(
    actor: User, case_file_id: Any, data: Mapping[str, Any], expected_version: int | None
) -> CaseFile:
    """Edit a file's title, dates and note (and its retention, for ad hoc files)."""
    case_file = _editable(actor, case_file_id)
    if case_file.state != "open":
        raise CaseFileNotOpen()
    if expected_version is not None and case_file.version != expected_version:
        raise Conflict()
    problems: list[str] = []
    title = _text(data, "title", 500, "Tiêu đề hồ sơ")
    if not title:
        problems.append("Vui lòng nhập tiêu đề hồ sơ.")
    dates: dict[str, dt.date | None] = {}
    for key, label in (("start_on", "Ngày bắt đầu"), ("end_on", "Ngày kết thúc")):
        try:
            dates[key] = parse_date(data.get(key), label)
        except ValidationFailed as exc:
            problems.append(exc.message)
    start_on, end_on = dates.get("start_on"), dates.get("end_on")
    if start_on is not None and end_on is not None and start_on > end_on:
        problems.append("Ngày bắt đầu phải trước ngày kết thúc.")
    retention = case_file.retention
    if data.get("retention") and data.get("retention") != retention.code:
        if case_file.source_list is not None and not actor.can("archive.manage"):
            problems.append("Thời hạn bảo quản của hồ sơ theo danh mục do lưu trữ điều chỉnh.")
        else:
            try:
                retention = retention_from_table(data.get("retention"))
            except ValidationFailed as exc:
                problems.append(exc.message)
    if problems:
        raise ValidationFailed(" ".join(problems))
    updated = CaseFile.objects(pk=case_file.pk, version=case_file.version, state="open").update_one(
        set__title=title,
        set__start_on=dates.get("start_on"),
        set__end_on=dates.get("end_on"),
        set__note=_text(data, "note", 2000, "Ghi chú") or None,
        set__retention=retention,
        inc__version=1,
    )
    if not updated:
        _refuse_edit(case_file.pk)
    audit.record("case_file.edit", obj=case_file)
    # A new retention changes the tags of every document the file holds.
    held = _held_ids(case_file) if retention != case_file.retention else []
    queue_update([case_file.pk, *held])
    return case_file.reload()


def _doc_label(doc: Document) -> str:
    return f"«{doc.notation or doc.subject[:60]}»"


def close_problems(case_file: CaseFile) -> list[str]:
    """Return why a file cannot be closed yet, in Vietnamese; [] when it can."""
    docs = [i.document for i in case_file.items if isinstance(i.document, Document)]
    if not docs:
        return ["Hồ sơ chưa có văn bản nào."]
    problems = []
    drafts = [d for d in docs if not d.migrated and d.state in DRAFT_STATES]
    cancelled = [d for d in docs if not d.migrated and d.state in CANCELLED_STATES]
    flagged = {d.pk for d in drafts + cancelled}
    running = [d for d in docs if not d.migrated and not d.closed and d.pk not in flagged]
    if drafts:
        problems.append(
            "Hồ sơ còn dự thảo: " + ", ".join(map(_doc_label, drafts)) + ". Gỡ ra trước khi đóng."
        )
    if cancelled:
        problems.append(
            "Hồ sơ có văn bản đã hủy: " + ", ".join(map(_doc_label, cancelled)) + ". Gỡ ra."
        )
    if running:
        problems.append(
            "Văn bản đang trong quy trình xử lý: "
            + ", ".join(map(_doc_label, running))
            + ". Hồ sơ chỉ đóng được khi mọi văn bản đã xử lý xong."
        )
    problems += _duplicates(docs)
    return problems


def _duplicates(docs: list[Document]) -> list[str]:
    """Find the same document twice: equal number, notation, issuer and date, or a copy."""
    seen: dict[tuple[Any, ...], Document] = {}
    ids = {d.pk for d in docs}
    out = []
    for doc in docs:
        if doc.source_document is not None and doc.source_document.pk in ids:
            out.append(f"{_doc_label(doc)} là bản nhận của văn bản đã có trong hồ sơ.")
            continue
        if not doc.notation:
            continue
        key = (doc.notation.strip().lower(), (doc.issuer or "").strip().lower(), doc.issued_on)
        if key in seen:
            out.append(f"{_doc_label(doc)} trùng với một văn bản khác trong hồ sơ.")
        seen[key] = doc
    if out:
        out[-1] += " Gỡ bản trùng trước khi đóng."
    return out


def _doc_day(doc: Document) -> dt.date | None:
    if doc.issued_on:
        return doc.issued_on
    when = doc.arrival_at or doc.created_at
    if when is None:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(VN_TZ).date()


def close_case_file(actor: User, case_file_id: Any, now: dt.datetime | None = None) -> CaseFile:
    """Close a file when the work ends: check it, count it, set its transfer deadline."""
    from workflows.case_file_export import document_pages

    now = now or utcnow()
    case_file = _editable(actor, case_file_id)
    if case_file.state != "open":
        raise CaseFileNotOpen("Hồ sơ đã kết thúc.")
    problems = close_problems(case_file)
    if problems:
        raise ValidationFailed("Chưa đóng được hồ sơ. " + " ".join(problems))
    docs = [i.document for i in case_file.items if isinstance(i.document, Document)]
    days = sorted(d for d in map(_doc_day, docs) if d)
    today = vn_today(now)
    retention = case_file.retention
    updated = CaseFile.objects(pk=case_file.pk, version=case_file.version, state="open").update_one(
        set__state="closed",
        set__closed_at=now,
        set__closed_on=today,
        set__closed_by_id=str(actor.pk),
        set__start_on=case_file.start_on or (days[0] if days else today),
        set__end_on=case_file.end_on or (days[-1] if days else today),
        set__document_count=len(docs),
        set__page_count=sum(document_pages(d) for d in docs),
        set__transfer_due_on=transfer_deadline(today, retention.years, retention.permanent),
        set__retention_ends_on=retention_ends(today, retention.years, retention.permanent),
        inc__version=1,
    )
    if not updated:
        _refuse_edit(case_file.pk)
    audit.record("case_file.close", obj=case_file, detail={"documents": len(docs)})
    queue_update([case_file.pk])
    return case_file.reload()


def reopen_case_file(actor: User, case_file_id: Any) -> CaseFile:
    """Reopen a closed file that has not gone to the archive, to add or remove documents."""
    case_file = _editable(actor, case_file_id)
    if case_file.state != "closed":
        raise Conflict("Hồ sơ đang mở.")
    if case_file.transfer_document is not None:
        raise Conflict("Hồ sơ đang được nộp lưu, không mở lại được.")
    updated = CaseFile.objects(
        pk=case_file.pk, version=case_file.version, state="closed", transfer_document=None
    ).update_one(
        set__state="open",
        unset__closed_at=True,
        unset__closed_on=True,
        unset__transfer_due_on=True,
        unset__retention_ends_on=True,
        inc__version=1,
    )
    if not updated:
        _refuse_edit(case_file.pk)
    audit.record("case_file.reopen", obj=case_file)
    queue_update([case_file.pk])
    return case_file.reload()


# Transfer to the agency archive -------------------------------------------------------------


def _transfer_problem(case_file: CaseFile, carrier: Any = None) -> str | None:
    if case_file.frozen:
        when = case_file.transferred_at
        day = f" ngày {when.astimezone(VN_TZ).strftime('%d/%m/%Y')}" if when else ""
        return f"Hồ sơ {case_file.code} đã được nộp lưu{day}, không nộp lại được."
    if case_file.state != "closed":
        return f"Hồ sơ {case_file.code} chưa kết thúc, chưa nộp lưu được."
    linked = case_file.transfer_document
    if linked is not None and (carrier is None or linked.pk != carrier):
        return f"Hồ sơ {case_file.code} đang được nộp lưu theo một biên bản khác."
    return None


def transfer_case_files(
    actor: User, case_file_ids: list[Any], comment: str = "", now: dt.datetime | None = None
) -> Any:
    """Transfer closed files to the agency archive; return the hand-over record.

    The record is created, linked to the files and moved through the `transfer` step of the
    case_file workflow, whose `transfer_case_file` action freezes them. If any step fails,
    the record is removed and no file changes.
    """
    now = now or utcnow()
    if not actor.can("archive.manage"):
        raise Forbidden("Chỉ người quản lý lưu trữ được tiếp nhận hồ sơ nộp lưu.")
    ids = list(dict.fromkeys(str(i) for i in case_file_ids if i))
    if not ids:
        raise ValidationFailed("Chọn ít nhất một hồ sơ để nộp lưu.")
    files = [get_case_file(actor, i, log_access=False) for i in ids]
    problems = [p for p in map(_transfer_problem, files) if p]
    if problems:
        already = any(f.frozen for f in files)
        raise (AlreadyTransferred if already else Conflict)(" ".join(problems))
    codes = ", ".join(f.code for f in files)
    content = "\n".join(
        f"{f.full_code()}: {f.title} ({f.retention.label}; {f.document_count} văn bản, "
        f"{f.page_count} trang)"
        for f in files
    )
    carrier = _carrier(
        actor,
        f"Biên bản giao nhận hồ sơ nộp lưu vào Lưu trữ cơ quan: {codes}",
        TRANSFER_CARRIER_TYPE,
        content,
        now,
    )
    linked = CaseFile.objects(pk__in=ids, state="closed", transfer_document=None).update(
        set__transfer_document=carrier
    )
    try:
        if linked != len(ids):
            raise Conflict("Hồ sơ vừa được người khác thay đổi. Vui lòng tải lại trang.")
        return engine.transition(carrier.pk, "transfer", actor, {"comment": comment}, now=now)
    except Exception:
        CaseFile.objects(transfer_document=carrier, state="closed").update(
            unset__transfer_document=True
        )
        _discard_carrier(carrier)
        raise


@actions.register("transfer_case_file", "Nộp lưu hồ sơ (đóng băng hồ sơ)", {})
def _transfer(ctx: ActionContext) -> None:
    files = list(CaseFile.objects(transfer_document=ctx.doc.pk))
    if not files:
        raise ValidationFailed("Biên bản này không kèm hồ sơ nào để nộp lưu.")
    done: list[tuple[Any, int]] = []

    def undo() -> None:
        for pk, version in done:
            CaseFile.objects(pk=pk).update_one(
                set__state="closed",
                set__version=version,
                unset__transferred_at=True,
                unset__transferred_by_id=True,
                unset__transferred_by_name=True,
            )

    ctx.on_rollback.append(undo)
    for case_file in files:
        problem = _transfer_problem(case_file, ctx.doc.pk)
        if problem:
            raise AlreadyTransferred(problem) if case_file.frozen else Conflict(problem)
        updated = CaseFile.objects(
            pk=case_file.pk, state="closed", version=case_file.version
        ).update_one(
            set__state="archived",
            set__transferred_at=ctx.now,
            set__transferred_by_id=str(ctx.principal.pk),
            set__transferred_by_name=ctx.principal.full_name,
            unset__transfer_due_on=True,
            inc__version=1,
        )
        if not updated:
            raise Conflict(f"Hồ sơ {case_file.code} vừa được người khác thay đổi.")
        done.append((case_file.pk, case_file.version))
    ctx.detail["case_files"] = [f.code for f in files]

    def log_and_notify() -> None:
        from workflows.notification import notify

        for case_file in files:
            audit.record("case_file.transfer", obj=case_file, detail={"record": str(ctx.doc.pk)})
            queue_update([case_file.pk, *_held_ids(case_file)])
            if case_file.owner_user is not None and case_file.owner_user.pk != ctx.actor.pk:
                notify(
                    str(case_file.owner_user.pk),
                    "archived",
                    f"Hồ sơ {case_file.code} đã được nộp lưu vào Lưu trữ cơ quan.",
                    link=f"/case-files/{case_file.pk}",
                )

    ctx.after_commit.append(log_and_notify)


# Seeds --------------------------------------------------------------------------------------


def seed_retention_table() -> None:
    """Load the common retention periods when the table is empty."""
    collection = RetentionPeriod._get_collection()
    if collection.find_one({}, {"_id": 1}) is not None:
        return
    # Raw rows: this runs at every start (and before every test), so skip per-row validation
    # of constant, known-good data.
    collection.insert_many(
        [
            {"code": code, "group": group, "title": title, "permanent": not years, "active": True}
            | ({"years": years} if years else {})
            | {"source": "Thông tư 10/2022/TT-BNV"}
            for code, group, title, years in COMMON_PERIODS
        ]
    )


# code suffix, title, retention row, owner unit, owner username
_DEMO_LIST = [
    ("01.VP", "Hồ sơ xây dựng Quy chế công tác văn thư, lưu trữ", "01.01", "VP", "chanhvanphong"),
    ("02.VP", "Kế hoạch, báo cáo công tác năm của Sở", "01.03", "VP", "chanhvanphong"),
    ("03.VP", "Công văn trao đổi về công tác hành chính, quản trị", "09.02", "VP", "vanthu"),
    ("04.VP", "Giấy mời, giấy giới thiệu", "09.04", "VP", "vanthu"),
    ("05.KHTC", "Hồ sơ dự toán ngân sách năm", "05.02", "KHTC", "cv.khtc"),
    ("06.KHTC", "Chứng từ kế toán", "05.03", "KHTC", "cv.khtc"),
    ("07.QLTM", "Hồ sơ kiểm tra, kiểm soát thị trường", "07.02", "QLTM", "chuyenvien"),
    ("08.QLTM", "Công văn trao đổi về quản lý thương mại", "01.06", "QLTM", "chuyenvien"),
    ("09.QLCN", "Hồ sơ quản lý an toàn hóa chất", "07.02", "QLCN", "cv.qlcn"),
    ("10.TTr", "Hồ sơ giải quyết khiếu nại, tố cáo", "07.03", "TTr", "chanhthanhtra"),
]


def seed_demo_case_files(now: dt.datetime | None = None) -> None:
    """Create the demo agency's approved list of case files for the current year."""
    year = vn_today(now).year
    if CaseFileList.objects(year=year).first() is not None:
        return
    periods = {p.code: p for p in RetentionPeriod.objects(code__in=[r[2] for r in _DEMO_LIST])}
    units = {u.abbreviation: u for u in Unit.objects(abbreviation__in=[r[3] for r in _DEMO_LIST])}
    people = {u.username: u for u in User.objects(username__in=[r[4] for r in _DEMO_LIST])}
    leader = User.objects(username="giamdoc").first()
    entries = []
    for code, title, period_code, unit, username in _DEMO_LIST:
        period = periods.get(period_code)
        if period is None or unit not in units:
            continue
        entries.append(
            CaseFileListEntry(
                code=code,
                title=f"{title} năm {year}",
                retention=Retention(
                    code=period.code, years=period.years, permanent=bool(period.permanent)
                ),
                owner_unit=units[unit],
                owner_user=people.get(username),
            )
        )
    agency = Agency.current()
    CaseFileList.objects.insert(
        CaseFileList(
            year=year,
            title=f"Danh mục hồ sơ năm {year}" + (f" của {agency.name}" if agency else ""),
            state="approved",
            entries=entries,
            approved_at=now or utcnow(),
            approved_by_id=str(leader.pk) if leader else None,
            approved_by_name=leader.full_name if leader else None,
        ),
        load_bulk=False,
    )
