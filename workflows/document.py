"""Document operations: creation, registration, editing, access, internal delivery."""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from bson import ObjectId
from werkzeug.datastructures import FileStorage

from models import audit
from models.audit import utcnow
from models.document import (
    CHANNELS,
    SIGNER_AUTHORITIES,
    Comment,
    Document,
    HistoryEntry,
    StoredFile,
)
from models.document_type import DocumentType
from models.organization import Agency, Unit
from models.user import User
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed

log = logging.getLogger(__name__)


def refresh_access(doc: Document) -> None:
    """Recompute who may see the document (ids kept on it for queries and the index)."""
    users = {
        doc.created_by_id,
        doc.presented_to_id,
        *doc.pending_user_ids,
        *doc.participant_ids,
        *doc.watcher_ids,
    }
    if doc.signer is not None:
        users.add(str(doc.signer.pk))
    if doc.circuit is not None:
        users.update(u for step in doc.circuit.steps for u in step.user_ids)
    units = {doc.owner_unit_id}
    if doc.issuer_unit is not None:
        units.add(str(doc.issuer_unit.pk))
    for a in doc.assignments:
        if a.user is not None:
            users.add(str(a.user.pk))
        if a.unit is not None:
            units.add(str(a.unit.pk))
    if doc.direction == "internal" and doc.pk is not None:
        from models.delivery import Delivery

        for delivery in Delivery.objects(document=doc.pk, delivered_at__ne=None):
            if delivery.user is not None:
                users.add(str(delivery.user.pk))
            elif delivery.unit is not None:
                units.add(str(delivery.unit.pk))
    doc.visible_user_ids = sorted(u for u in users if u)
    doc.visible_unit_ids = sorted(u for u in units if u)


def can_view(doc: Document, user: User) -> bool:
    """Tell whether `user` may open `doc` (unit, involvement, role grant, clearance)."""
    if (doc.secrecy or 0) > (user.clearance or 0):
        return False
    if user.can("document.view_all"):
        return True
    if str(user.pk) in doc.visible_user_ids:
        return True
    if doc.migrated and user.can("archive.search"):
        return True
    return user.unit is not None and str(user.unit.pk) in doc.visible_unit_ids


def get_for(user: User, doc_id: Any, *, log_view: bool = True) -> Document:
    """Return a document `user` may open; anything else is 'not found' (no id probing)."""
    try:
        doc = Document.objects(pk=doc_id).first()
    except Exception:
        doc = None
    if doc is None or not can_view(doc, user):
        raise NotFound("Không tìm thấy văn bản hoặc bạn không có quyền xem.")
    if log_view and (doc.secrecy or 0) > 0:
        audit.record("document.view", obj=doc, detail={"secrecy": doc.secrecy})
    return doc


def deliver_internally(doc_id: str, actor_id: str) -> list[Document]:
    """Create the incoming documents of the internal units an issued document is sent to."""
    from workflows import register_book
    from workflows.engine import start

    source = Document.objects(pk=doc_id).first()
    actor = User.objects(pk=actor_id).first()
    if source is None:
        return []
    agency = Agency.current()
    created = []
    for unit in source.recipient_units:
        if unit is None or Document.objects(source_document=source, owner_unit_id=str(unit.pk)):
            continue  # delivered once, even if the effect runs again
        incoming = Document(
            direction="incoming",
            doc_type=source.doc_type,
            doc_type_name=source.doc_type_name,
            notation=source.notation,
            issuer=agency.name if agency else source.issuer,
            issued_on=source.issued_on,
            subject=source.subject,
            content=source.content,
            signer_authority=source.signer_authority,
            signer_title=source.signer_title,
            signer_name=source.signer_name,
            urgency=source.urgency,
            secrecy=source.secrecy,
            pages=source.pages,
            channel="internal",
            source_document=source,
            revisions=list(source.revisions),
            attachments=list(source.attachments),
            owner_unit_id=str(unit.pk),
            created_by_id=actor_id,
        )
        register_book.assign_arrival_number(incoming, actor_id=actor_id)
        start(incoming, actor)
        created.append(incoming)
        log.info("delivered document %s to unit %s as %s", doc_id, unit.pk, incoming.pk)
    return created


# Creation and editing ---------------------------------------------------------------------


class DuplicateWarning(Conflict):
    """The document looks already registered; the clerk must confirm to go on."""

    code = "possible_duplicate"

    def __init__(self, duplicates: list[Document]) -> None:
        listing = "; ".join(
            f"{d.notation or '?'} ({d.issuer or ''}, số đến {d.arrival_number})"
            if d.direction == "incoming"
            else f"{d.notation or d.number}"
            for d in duplicates[:5]
        )
        super().__init__(
            f"Văn bản có thể đã được vào sổ: {listing}. Kiểm tra lại, hoặc xác nhận để vẫn vào sổ."
        )
        self.duplicates = duplicates


def parse_date(value: Any, label: str) -> dt.date | None:
    """Parse dd/mm/yyyy, d/m/yyyy or yyyy-mm-dd; raise a Vietnamese error otherwise."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationFailed(f"{label} không đúng định dạng ngày (dd/mm/yyyy): '{text[:20]}'.")


def _int_choice(value: Any, allowed: range, label: str) -> int:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        number = -1
    if number not in allowed:
        raise ValidationFailed(f"{label} không hợp lệ.")
    return number


def _lines(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").splitlines()
    return [unicodedata.normalize("NFC", i).strip()[:300] for i in items if str(i).strip()][:100]


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    value = unicodedata.normalize("NFC", str(data.get(key) or "")).strip()
    if len(value) > limit:
        raise ValidationFailed(f"Trường '{FIELD_LABELS.get(key, key)}' dài quá {limit} ký tự.")
    return value


FIELD_LABELS = {
    "subject": "Trích yếu",
    "issuer": "Cơ quan ban hành",
    "notation": "Số, ký hiệu",
    "issued_on": "Ngày văn bản",
    "doc_type": "Loại văn bản",
    "signer_name": "Người ký",
    "signer_title": "Chức vụ người ký",
    "place": "Địa danh",
    "content": "Nội dung",
}


def parse_fields(data: Mapping[str, Any], direction: str, actor: User) -> dict[str, Any]:
    """Turn submitted metadata into document fields; every problem in one Vietnamese error."""
    problems: list[str] = []
    fields: dict[str, Any] = {}

    def attempt(fn: Any) -> None:
        try:
            fn()
        except ValidationFailed as exc:
            problems.append(exc.message)

    fields["subject"] = _text(data, "subject", 2000)
    if not fields["subject"]:
        problems.append("Vui lòng nhập trích yếu văn bản.")
    doc_type = None
    if data.get("doc_type"):
        doc_type = (
            DocumentType.objects(pk=data["doc_type"]).first()
            if ObjectId.is_valid(str(data["doc_type"]))
            else None
        )
    if doc_type is None:
        problems.append("Vui lòng chọn loại văn bản.")
    fields["doc_type"] = doc_type
    fields["doc_type_name"] = doc_type.name if doc_type else None
    for key, limit in (
        ("notation", 120),
        ("issuer", 300),
        ("place", 100),
        ("signer_title", 200),
        ("signer_name", 200),
    ):
        fields[key] = _text(data, key, limit) or None
    fields["content"] = _text(data, "content", 200_000) or None
    attempt(lambda: fields.update(issued_on=parse_date(data.get("issued_on"), "Ngày văn bản")))
    attempt(lambda: fields.update(deadline_on=parse_date(data.get("deadline_on"), "Hạn xử lý")))
    attempt(lambda: fields.update(urgency=_int_choice(data.get("urgency"), range(4), "Độ khẩn")))
    attempt(lambda: fields.update(secrecy=_int_choice(data.get("secrecy"), range(4), "Độ mật")))
    for key, label in (("pages", "Số trang"), ("copies", "Số bản")):
        attempt(
            lambda key=key, label=label: fields.update(
                {key: _int_choice(data.get(key), range(100_000), label) or None}
            )
        )
    authority = str(data.get("signer_authority") or "")
    if authority not in SIGNER_AUTHORITIES:
        problems.append("Thẩm quyền ký không hợp lệ.")
    fields["signer_authority"] = authority if authority in SIGNER_AUTHORITIES else ""
    fields["recipients_to"] = _lines(data.get("recipients_to"))
    fields["recipients"] = _lines(data.get("recipients"))
    if fields.get("secrecy", 0) > (actor.clearance or 0):
        problems.append("Bạn không được phép tạo văn bản có độ mật cao hơn mức được phép xem.")
    if direction == "incoming":
        if not fields["issuer"]:
            problems.append("Vui lòng nhập cơ quan ban hành.")
        channel = str(data.get("channel") or "paper")
        if channel not in CHANNELS:
            problems.append("Hình thức nhận không hợp lệ.")
        fields["channel"] = channel
    else:
        signer = None
        if data.get("signer"):
            signer = (
                User.objects(pk=data["signer"], active=True).first()
                if ObjectId.is_valid(str(data["signer"]))
                else None
            )
            if signer is None or not signer.can("document.sign"):
                problems.append("Người ký phải là lãnh đạo có quyền ký văn bản.")
        elif direction == "outgoing":
            problems.append("Vui lòng chọn người ký văn bản.")
        fields["signer"] = signer
        if signer is not None:
            fields["signer_name"] = fields["signer_name"] or signer.full_name
            fields["signer_title"] = fields["signer_title"] or (
                signer.position.name.upper() if signer.position else None
            )
        ids = data.get("recipient_units") or []
        ids = ids if isinstance(ids, list) else [ids]
        units = list(Unit.objects(pk__in=[i for i in ids if ObjectId.is_valid(str(i))]))
        if len(units) != len(ids):
            problems.append("Đơn vị nhận không thuộc cơ quan.")
        fields["recipient_units"] = units
    if problems:
        raise ValidationFailed(" ".join(problems))
    return fields


def _store_files(
    main: FileStorage | None, extras: list[FileStorage], actor: User, stored: list[StoredFile]
) -> tuple[StoredFile | None, list[StoredFile]]:
    from workflows import storage

    main_file = None
    if main is not None and main.filename:
        main_file = storage.store_upload(
            cast(BinaryIO, main.stream), main.filename, uploaded_by=str(actor.pk)
        )
        stored.append(main_file)
    attachments = []
    for extra in extras:
        if extra is not None and extra.filename:
            item = storage.store_upload(
                cast(BinaryIO, extra.stream), extra.filename, uploaded_by=str(actor.pk)
            )
            stored.append(item)
            attachments.append(item)
    return main_file, attachments


def _discard(stored: list[StoredFile]) -> None:
    from workflows import storage

    for item in stored:
        storage.delete_file(item.file_id)


def _create(
    direction: str,
    actor: User,
    data: Mapping[str, Any],
    main: FileStorage | None,
    extras: list[FileStorage],
    *,
    confirm_duplicate: bool = False,
) -> Document:
    from workflows import register_book, storage
    from workflows.engine import start

    fields = parse_fields(data, direction, actor)
    doc = Document(
        direction=direction,
        created_by_id=str(actor.pk),
        owner_unit_id=str(actor.unit.pk) if actor.unit else None,
        **fields,
    )
    if direction != "incoming":
        doc.issuer_unit = actor.unit
        agency = Agency.current()
        doc.issuer = doc.issuer or (agency.name if agency else None)
    else:
        doc.arrival_at = utcnow()
        duplicates = register_book.find_duplicates(doc)
        if duplicates and not confirm_duplicate:
            raise DuplicateWarning(duplicates)
    stored: list[StoredFile] = []
    try:
        main_file, attachments = _store_files(main, extras, actor, stored)
        if direction == "incoming" and main_file is None:
            raise ValidationFailed("Vui lòng đính kèm bản quét hoặc tệp PDF của văn bản đến.")
        if main_file is not None:
            storage.add_revision(doc, main_file, kind="upload", source_rev=None, note=None)
        doc.attachments = attachments
        if direction == "incoming":
            register_book.assign_arrival_number(doc, actor_id=str(actor.pk))
        start(doc, actor)
    except Exception:
        _discard(stored)
        if doc.pk is not None:
            Document.objects(pk=doc.pk).delete()
        raise
    audit.record("document.register" if direction == "incoming" else "document.create", obj=doc)
    _convert_if_needed(doc, actor)
    return doc


def _convert_if_needed(doc: Document, actor: User) -> None:
    revision = doc.current_revision
    if (
        revision is not None
        and revision.mime != "application/pdf"
        and revision.mime
        in (
            DOCX_MIME,
            DOC_MIME,
        )
    ):
        from jobs.conversion import enqueue_conversion

        enqueue_conversion(doc, revision.rev, str(actor.pk))


DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOC_MIME = "application/msword"


def register_incoming(
    actor: User,
    data: Mapping[str, Any],
    main: FileStorage | None,
    extras: list[FileStorage] | None = None,
    *,
    confirm_duplicate: bool = False,
) -> Document:
    """Register an incoming document: metadata, scan, arrival number and date, workflow."""
    if not actor.can("document.register_incoming"):
        raise Forbidden("Bạn không có quyền vào sổ văn bản đến.")
    return _create("incoming", actor, data, main, extras or [], confirm_duplicate=confirm_duplicate)


def create_draft(
    actor: User,
    data: Mapping[str, Any],
    main: FileStorage | None,
    extras: list[FileStorage] | None = None,
    *,
    direction: str = "outgoing",
) -> Document:
    """Create an outgoing (or internal) draft with its file, and start its workflow."""
    if direction not in ("outgoing", "internal"):
        raise ValidationFailed("Loại văn bản không hợp lệ.")
    if not actor.can("document.create_draft"):
        raise Forbidden("Bạn không có quyền soạn thảo văn bản.")
    return _create(direction, actor, data, main, extras or [])


EDITABLE_STATES = {"incoming": {"registered"}, "outgoing": {"draft"}, "internal": {"draft"}}


def update_metadata(
    doc_id: Any, actor: User, data: Mapping[str, Any], expected_version: int
) -> Document:
    """Edit a document's metadata; a save on a stale version is refused, nothing lost."""
    doc = get_for(actor, doc_id, log_view=False)
    if doc.migrated:
        raise Forbidden("Văn bản chuyển đổi từ hệ thống cũ chỉ để tra cứu, không sửa được.")
    may_edit = doc.created_by_id == str(actor.pk) or (
        doc.direction == "incoming" and actor.can("document.register_incoming")
    )
    if not may_edit:
        raise Forbidden("Bạn không có quyền sửa văn bản này.")
    if doc.state not in EDITABLE_STATES[doc.direction]:
        raise Conflict("Văn bản đã chuyển bước xử lý, không sửa thông tin được nữa.")
    if doc.version != expected_version:
        raise Conflict()
    fields = parse_fields(data, doc.direction, actor)
    changed = {k: v for k, v in fields.items() if getattr(doc, k) != v}
    for key, value in changed.items():
        setattr(doc, key, value)
    from workflows.engine import _save

    doc.history.append(
        HistoryEntry(
            actor_id=str(actor.pk),
            actor_name=actor.full_name,
            action="edited",
            label="Sửa thông tin văn bản",
            detail={"fields": sorted(changed)},
        )
    )
    refresh_access(doc)
    _save(doc, expected_version, doc.state)
    return doc


def add_comment(doc_id: Any, actor: User, text: str) -> Document:
    """Add a comment to a document the actor may see."""
    doc = get_for(actor, doc_id, log_view=False)
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        raise ValidationFailed("Vui lòng nhập nội dung ý kiến.")
    if len(text) > 5000:
        raise ValidationFailed("Ý kiến dài quá 5.000 ký tự.")
    comment = Comment(author_id=str(actor.pk), author_name=actor.full_name, text=text)
    Document.objects(pk=doc.pk).update_one(push__comments=comment, set__updated_at=utcnow())
    doc.reload()
    return doc


def set_watching(doc_id: Any, actor: User, watching: bool) -> None:
    """Follow or stop following a document ("Theo dõi")."""
    doc = get_for(actor, doc_id, log_view=False)
    uid = str(actor.pk)
    if watching:
        Document.objects(pk=doc.pk).update_one(add_to_set__watcher_ids=uid)
    else:
        Document.objects(pk=doc.pk).update_one(pull__watcher_ids=uid)
