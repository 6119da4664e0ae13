"""Internal documents (văn bản nội bộ): sending, read receipts, threads, forwarding.

An internal document is a `Document` of direction "internal" that runs the published
"internal" workflow. Sending creates one `Delivery` per recipient before the workflow's
sending transition; that transition's `deliver_internal` action marks them delivered, so an
admin may put an approval step before sending without code. Recipients get the document in
their inbox and are added to the document's visible lists; opening it marks it read.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from bson import ObjectId
from flask import current_app
from mongoengine import Q
from werkzeug.datastructures import FileStorage

from models import audit
from models.audit import Actor, current_actor, utcnow
from models.delivery import Delivery, recipient_key
from models.document import URGENCY_LEVELS, Document, StoredFile
from models.document_type import DocumentType
from models.organization import Agency, Unit
from models.user import User
from workflows import actions
from workflows.errors import Forbidden, NotFound, ValidationFailed
from workflows.rules import _heads_of, delegations_to

log = logging.getLogger(__name__)
DELIVER_ACTION = "deliver_internal"
MAX_RECIPIENTS = 500


# Recipients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A unit or a person of the agency."""

    kind: str
    unit: Unit | None = None
    user: User | None = None

    @property
    def key(self) -> str:
        target = self.unit if self.kind == "unit" else self.user
        return recipient_key(self.kind, target.pk if target else "")

    @property
    def name(self) -> str:
        if self.unit is not None:
            return str(self.unit.name)
        assert self.user is not None
        unit = f" ({self.user.unit.abbreviation})" if self.user.unit else ""
        return f"{self.user.full_name}{unit}"


def _recipient_refs(raw: Any) -> list[tuple[str, str]]:
    items = raw if isinstance(raw, list | tuple) else [raw] if raw else []
    refs: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, Mapping):
            if "kind" in item:
                refs.append((str(item.get("kind")), str(item.get("id") or "")))
            else:
                refs += [(k, str(item[k])) for k in ("unit", "user") if item.get(k)]
                if not any(item.get(k) for k in ("unit", "user")):
                    refs.append(("?", str(dict(item))[:60]))
        else:
            kind, _, ident = str(item).partition(":")
            refs.append((kind.strip(), ident.strip()))
    return refs


def parse_recipients(raw: Any) -> list[Recipient]:
    """Turn 'unit:<id>' / 'user:<id>' items into recipients of this agency, or refuse them all.

    Unknown ids, inactive units and people who no longer work here are refused with one
    Vietnamese message naming them; nothing is stored.
    """
    refs = _recipient_refs(raw)
    if not refs:
        raise ValidationFailed("Chọn ít nhất một đơn vị hoặc cá nhân nhận.")
    if len(refs) > MAX_RECIPIENTS:
        raise ValidationFailed(f"Gửi tối đa {MAX_RECIPIENTS} nơi nhận một lần.")
    out: dict[str, Recipient] = {}
    bad: list[str] = []
    for kind, ident in refs:
        found: Unit | User | None = None
        if kind in ("unit", "user") and ObjectId.is_valid(ident):
            model: Any = Unit if kind == "unit" else User
            found = model.objects(pk=ident, active=True).first()
        if found is None:
            bad.append(f"{kind}:{ident}"[:60])
            continue
        recipient = Recipient(
            kind, unit=found if kind == "unit" else None, user=found if kind == "user" else None
        )
        out.setdefault(recipient.key, recipient)
    if bad:
        raise ValidationFailed(
            "Nơi nhận không thuộc cơ quan hoặc đã ngừng hoạt động: " + ", ".join(bad) + "."
        )
    return list(out.values())


def recipient_choices() -> list[tuple[str, str]]:
    """Every unit and active person of the agency, as form options."""
    units = [(f"unit:{u.pk}", f"Đơn vị: {u.name}") for u in Unit.objects(active=True)]
    people = [
        (f"user:{u.pk}", f"{u.full_name}" + (f" ({u.unit.abbreviation})" if u.unit else ""))
        for u in User.objects(active=True)
    ]
    return units + people


# Uploads ------------------------------------------------------------------------------------


def _size(upload: FileStorage) -> int:
    stream = upload.stream
    here = stream.tell()
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(here)
    return int(size)


def check_uploads(files: Iterable[FileStorage | None]) -> list[FileStorage]:
    """Return the non-empty uploads; refuse an oversized one before anything is stored."""
    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    kept = [f for f in files if f is not None and f.filename]
    for upload in kept:
        if _size(upload) > limit:
            raise ValidationFailed(
                f"Tệp '{upload.filename}' quá lớn (tối đa {limit // (1024 * 1024) or 1} MB)."
            )
    return kept


def store_uploads(files: list[FileStorage], actor: User) -> list[StoredFile]:
    """Store checked uploads in GridFS; on a failure, remove those already stored."""
    if not files:
        return []
    from workflows import storage

    stored: list[StoredFile] = []
    try:
        for upload in files:
            stream = cast(BinaryIO, upload.stream)
            name = upload.filename or "tep"
            stored.append(storage.store_upload(stream, name, uploaded_by=str(actor.pk)))
    except Exception:
        discard(stored)
        raise
    return stored


def discard(stored: Iterable[StoredFile | None]) -> None:
    """Remove stored files that will not be kept."""
    items = [s for s in stored if s is not None]
    if not items:
        return
    from workflows import storage

    for item in items:
        try:
            storage.delete_file(item.file_id)
        except Exception:
            log.exception("could not delete stored file %s", item.file_id)


# Sending ------------------------------------------------------------------------------------


def numbering_available() -> bool:
    """Tell whether an internal register book can number documents."""
    try:
        importlib.import_module("workflows.register_book")
    except ImportError:
        return False
    return True


def may_send(user: User) -> bool:
    """Tell whether `user` may send internal documents and requests."""
    return any(user.can(p) for p in ("document.create_draft", "document.process"))


def _clean(value: Any, limit: int, label: str) -> str:
    text = unicodedata.normalize("NFC", str(value or "")).strip()
    if len(text) > limit:
        raise ValidationFailed(f"{label} dài quá {limit:,} ký tự.".replace(",", "."))
    return text


def _fields(data: Mapping[str, Any]) -> dict[str, Any]:
    subject = _clean(data.get("subject"), 2000, "Trích yếu")
    if not subject:
        raise ValidationFailed("Vui lòng nhập trích yếu văn bản.")
    doc_type = None
    if data.get("doc_type"):
        ident = str(data["doc_type"])
        doc_type = DocumentType.objects(pk=ident).first() if ObjectId.is_valid(ident) else None
        if doc_type is None:
            raise ValidationFailed("Loại văn bản không hợp lệ.")
    try:
        urgency = int(data.get("urgency") or 0)
    except (TypeError, ValueError):
        urgency = -1
    if urgency not in URGENCY_LEVELS:
        raise ValidationFailed("Độ khẩn không hợp lệ.")
    return {
        "subject": subject,
        "content": _clean(data.get("content"), 200_000, "Nội dung") or None,
        "doc_type": doc_type,
        "doc_type_name": doc_type.name if doc_type else None,
        "urgency": urgency,
    }


def _actor_for_audit(user: User, principal: User | None = None) -> Actor:
    here = current_actor()
    on_behalf = principal.full_name if principal is not None and principal.pk != user.pk else None
    return Actor(user_id=str(user.pk), name=user.full_name, ip=here.ip, on_behalf_of=on_behalf)


def _thread_of(doc: Document) -> ObjectId:
    first = Delivery.objects(document=doc.pk).only("thread_id").first()
    return first.thread_id if first is not None else doc.pk


def send(
    actor: User,
    data: Mapping[str, Any],
    recipients: Any,
    files: Iterable[FileStorage | None] = (),
    *,
    number: bool = False,
    reply_to: Any = None,
) -> Document:
    """Create an internal document and send it to units and people of the agency.

    All or nothing: a bad recipient, an oversized file or a failing workflow step leaves
    no document, delivery or stored file behind.
    """
    if not may_send(actor):
        raise Forbidden("Bạn không có quyền gửi văn bản nội bộ.")
    fields = _fields(data)
    targets = parse_recipients(recipients)
    parent = get_for(actor, reply_to, mark=False) if reply_to else None
    uploads = check_uploads(files)
    agency = Agency.current()
    doc = Document(
        direction="internal",
        created_by_id=str(actor.pk),
        owner_unit_id=str(actor.unit.pk) if actor.unit else None,
        issuer_unit=actor.unit,
        issuer=agency.name if agency else None,
        recipient_units=[t.unit for t in targets if t.unit is not None],
        recipients=[t.name for t in targets],
        **fields,
    )
    stored: list[StoredFile] = []
    numbered = False
    try:
        stored = store_uploads(uploads, actor)
        doc.attachments = stored
        if number and numbering_available():
            _register_book().assign_number(doc, actor_id=str(actor.pk))
            numbered = True
        from workflows.engine import start

        start(doc, actor)
        thread_id = _thread_of(parent) if parent is not None else doc.pk
        for target in targets:
            _delivery(
                doc,
                target,
                actor,
                thread_id=thread_id,
                reply_to=parent.pk if parent is not None else None,
            ).save()
        _send_now(doc, actor, str(data.get("comment") or "") or None)
    except Exception:
        if doc.pk is not None:
            Delivery.objects(document=doc.pk).delete()
            Document.objects(pk=doc.pk).delete()
        discard(stored)
        if numbered:
            _cancel_number(doc, actor)
        raise
    doc.reload()
    audit.record(
        "internal.send",
        obj=doc,
        detail={
            "recipients": [t.name for t in targets],
            "reply_to": str(parent.pk) if parent else None,
        },
        actor=_actor_for_audit(actor),
    )
    return doc


def _register_book() -> Any:
    return importlib.import_module("workflows.register_book")


def _cancel_number(doc: Document, actor: User) -> None:
    cancel = getattr(_register_book(), "cancel_number", None)
    if cancel is not None:
        try:
            cancel(doc, actor_id=str(actor.pk), reason="Gửi văn bản nội bộ không thành công")
        except Exception:
            log.exception("could not give back number of document %s", doc.pk)


def _delivery(
    doc: Document,
    target: Recipient,
    sender: User,
    *,
    thread_id: ObjectId,
    reply_to: ObjectId | None = None,
    how: str = "sent",
    delivered_at: dt.datetime | None = None,
    **extra: Any,
) -> Delivery:
    return Delivery(
        document=doc,
        thread_id=thread_id,
        reply_to=reply_to,
        key=target.key,
        kind=target.kind,
        unit=target.unit,
        user=target.user,
        name=target.name,
        how=how,
        sender_id=str(sender.pk),
        sender_name=sender.full_name,
        delivered_at=delivered_at,
        **extra,
    )


def _send_now(doc: Document, actor: User, comment: str | None) -> None:
    """Take the workflow transition that delivers, when the sender may take it now."""
    from workflows.engine import available_transitions, transition
    from workflows.workflow_definition import version_spec

    spec = version_spec(doc.workflow_code, doc.workflow_version)
    delivering = {
        t["code"]
        for t in spec.get("transitions") or []
        if any(call.get("id") == DELIVER_ACTION for call in t.get("actions") or [])
    }
    move = next((a for a in available_transitions(doc, actor) if a.code in delivering), None)
    if move is None:
        log.info("internal document %s waits in state %s before sending", doc.pk, doc.state)
        return
    transition(doc.pk, move.code, actor, {"comment": comment} if comment else {})


@actions.register(DELIVER_ACTION, "Gửi văn bản nội bộ tới đơn vị, cá nhân nhận", {})
def _deliver(ctx: actions.ActionContext) -> None:
    doc = ctx.doc
    waiting = list(Delivery.objects(document=doc.pk, delivered_at=None))
    created: list[Delivery] = []
    if not waiting and not Delivery.objects(document=doc.pk).count():
        # A draft made on the document screens names recipient units only.
        for unit in doc.recipient_units:
            if unit is not None:
                created.append(
                    _delivery(
                        doc,
                        Recipient("unit", unit=unit),
                        ctx.actor,
                        thread_id=doc.pk,
                        delivered_at=ctx.now,
                    ).save()
                )
        ctx.on_rollback.append(lambda: [d.delete() for d in created])
    if not waiting and not created:
        raise ValidationFailed("Chọn ít nhất một đơn vị hoặc cá nhân nhận văn bản.")
    ids = [d.pk for d in waiting]
    if ids:
        Delivery.objects(pk__in=ids).update(set__delivered_at=ctx.now)
        ctx.on_rollback.append(lambda: Delivery.objects(pk__in=ids).update(set__delivered_at=None))
    ctx.detail["delivered_to"] = [d.name for d in waiting + created]
    doc_id, delivery_ids = doc.pk, ids + [d.pk for d in created]
    ctx.after_commit.append(lambda: announce(doc_id, delivery_ids))


def announce(doc_id: Any, delivery_ids: list[Any]) -> None:
    """Let the recipients of fresh deliveries open the document, and notify them."""
    from workflows.notification import notify

    deliveries = list(Delivery.objects(pk__in=delivery_ids))
    grant_access(doc_id, deliveries)
    doc = Document.objects(pk=doc_id).only("subject").first()
    subject = doc.subject[:120] if doc else ""
    people: set[str] = set()
    for d in deliveries:
        if d.user is not None:
            people.add(str(d.user.pk))
        elif d.unit is not None:
            people |= _heads_of([str(d.unit.pk)])
    for uid in people:
        notify(
            uid, "internal", f"Văn bản nội bộ đến: {subject}", link=f"/internal-documents/{doc_id}"
        )


def grant_access(doc_id: Any, deliveries: Iterable[Delivery]) -> None:
    """Add the recipients to the document's visible lists (one atomic write)."""
    users = sorted({str(d.user.pk) for d in deliveries if d.user is not None})
    units = sorted({str(d.unit.pk) for d in deliveries if d.unit is not None and d.user is None})
    update: dict[str, Any] = {}
    if users:
        update["add_to_set__visible_user_ids"] = users
    if units:
        update["add_to_set__visible_unit_ids"] = units
    if update:
        Document.objects(pk=doc_id).update_one(**update)


# Reading ------------------------------------------------------------------------------------


def _mine(user: User) -> Q:
    scope = Q(user=user)
    if user.unit is not None:
        scope |= Q(unit=user.unit, user=None)
    return scope


def get_for(user: User, doc_id: Any, *, mark: bool = True) -> Document:
    """Return an internal document `user` may open (by access or by a delivery); mark it read."""
    from workflows import document as documents

    found: Document | None
    try:
        found = documents.get_for(user, doc_id, log_view=False)
    except NotFound:
        found = None
        if ObjectId.is_valid(str(doc_id)):
            mine = list(Delivery.objects(_mine(user), document=doc_id, delivered_at__ne=None))
            found = Document.objects(pk=doc_id).first() if mine else None
            if found is not None and (found.secrecy or 0) > (user.clearance or 0):
                found = None
            if found is not None:
                # The visible lists were recomputed since delivery: give the access back.
                grant_access(doc_id, mine)
        if found is None:
            raise
    doc = found
    if doc.direction != "internal":
        raise NotFound("Không tìm thấy văn bản nội bộ.")
    if mark:
        mark_read(doc, user)
    return doc


def mark_read(doc: Document, user: User, now: dt.datetime | None = None) -> int:
    """Mark the user's own and unit's deliveries of `doc` read; return how many."""
    now = now or utcnow()
    unread = Delivery.objects(_mine(user), document=doc.pk, delivered_at__ne=None, read_at=None)
    count = int(
        unread.update(
            set__read_at=now, set__read_by_id=str(user.pk), set__read_by_name=user.full_name
        )
    )
    if count:
        audit.record(
            "internal.read", obj=doc, detail={"deliveries": count}, actor=_actor_for_audit(user)
        )
    return count


def inbox(user: User, *, unread_only: bool = False, limit: int = 200) -> list[Delivery]:
    """The user's received internal documents, newest first, one line per document."""
    qs = Delivery.objects.for_user(user)
    if unread_only:
        qs = qs.filter(read_at=None)
    seen: set[Any] = set()
    out: list[Delivery] = []
    for d in qs.order_by("-delivered_at").limit(limit * 2):
        ref = d.document
        if ref is None or ref.pk in seen:
            continue
        seen.add(ref.pk)
        out.append(d)
        if len(out) >= limit:
            break
    return out


def sent_by(user: User, limit: int = 200) -> list[tuple[Document, int, int]]:
    """The user's sent internal documents with (delivered, read) counts."""
    docs = list(
        Document.objects(direction="internal", created_by_id=str(user.pk))
        .order_by("-created_at")
        .limit(limit)
    )
    out = []
    for doc in docs:
        qs = Delivery.objects(document=doc.pk, delivered_at__ne=None)
        out.append((doc, qs.count(), qs.filter(read_at__ne=None).count()))
    return out


def receipts(doc: Document, user: User) -> list[Delivery]:
    """Who received `doc` and who read it; the sender sees all, others their own part."""
    qs = Delivery.objects(document=doc.pk).order_by("created_at")
    if doc.created_by_id == str(user.pk) or user.can("document.view_all"):
        return list(qs)
    uid = str(user.pk)
    return [d for d in qs.filter(_mine(user) | Q(sender_id=uid) | Q(redistributed_by=uid))]


def thread(doc: Document, user: User) -> list[Document]:
    """The documents of `doc`'s thread of replies that `user` may open, oldest first."""
    from workflows.document import can_view

    thread_id = _thread_of(doc)
    ids = Delivery._get_collection().distinct("document", {"thread_id": thread_id})
    ids = set(ids) | {thread_id}
    mine = set(
        Delivery._get_collection().distinct(
            "document", {"thread_id": thread_id, "$or": _mine_raw(user)}
        )
    )
    out = []
    for item in Document.objects(pk__in=list(ids)).order_by("created_at"):
        if item.pk in mine or can_view(item, user):
            out.append(item)
    return out


def _mine_raw(user: User) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"user": user.pk}]
    if user.unit is not None:
        out.append({"unit": user.unit.pk, "user": None})
    return out


# Forwarding and re-distribution -------------------------------------------------------------


def _members(unit: Unit, user_ids: Iterable[str]) -> list[User]:
    ids = [u for u in user_ids if u]
    if not ids:
        raise ValidationFailed("Chọn ít nhất một người nhận.")
    subtree = unit.subtree_ids()
    people = []
    for ident in ids:
        person = User.objects(pk=ident, active=True).first() if ObjectId.is_valid(ident) else None
        if person is None or person.unit is None or person.unit.pk not in subtree:
            raise ValidationFailed(
                f"Chỉ gửi được cho người đang làm việc trong {unit.name}: '{ident}' không thuộc "
                "đơn vị."
            )
        people.append(person)
    return people


def _add_deliveries(
    doc: Document,
    source: Delivery,
    actor: User,
    people: list[User],
    how: str,
    note: str,
    principal: User | None = None,
) -> list[Delivery]:
    now = utcnow()
    have = set(Delivery.objects(document=doc.pk).scalar("key"))
    fresh = [p for p in people if recipient_key("user", p.pk) not in have]
    if not fresh:
        raise ValidationFailed("Những người được chọn đã nhận văn bản này.")
    made = []
    for person in fresh:
        extra: dict[str, Any] = {"forwarded_from": source.pk, "note": note or None}
        if how == "redistributed":
            extra["redistributed_by"] = str(actor.pk)
            if principal is not None and principal.pk != actor.pk:
                extra.update(
                    on_behalf_of_id=str(principal.pk), on_behalf_of_name=principal.full_name
                )
        made.append(
            _delivery(
                doc,
                Recipient("user", user=person),
                actor,
                thread_id=source.thread_id,
                reply_to=source.reply_to,
                how=how,
                delivered_at=now,
                **extra,
            ).save()
        )
    announce(doc.pk, [d.pk for d in made])
    audit.record(
        f"internal.{'forward' if how == 'forwarded' else 'redistribute'}",
        obj=doc,
        detail={"to": [d.name for d in made], "note": note or None},
        actor=_actor_for_audit(actor, principal),
    )
    return made


def forward(doc_id: Any, actor: User, user_ids: Iterable[str], note: str = "") -> list[Delivery]:
    """Forward a received internal document to colleagues of the actor's own unit."""
    doc = get_for(actor, doc_id, mark=False)
    source = (
        Delivery.objects(document=doc.pk, user=actor, delivered_at__ne=None).first()
        or Delivery.objects(_mine(actor), document=doc.pk, delivered_at__ne=None).first()
    )
    if source is None or actor.unit is None:
        raise Forbidden("Chỉ người nhận văn bản được chuyển tiếp trong đơn vị.")
    people = _members(actor.unit, user_ids)
    return _add_deliveries(doc, source, actor, people, "forwarded", _clean(note, 2000, "Ghi chú"))


def redistributable(
    doc: Document, user: User, now: dt.datetime | None = None
) -> list[tuple[Delivery, User]]:
    """The unit deliveries of `doc` `user` may re-distribute, with the head acted for."""
    out = []
    delegations = delegations_to(user, "process", now or utcnow())
    for d in Delivery.objects(document=doc.pk, kind="unit", delivered_at__ne=None):
        heads = _heads_of([str(d.unit.pk)]) if d.unit else set()
        if str(user.pk) in heads:
            out.append((d, user))
            continue
        for delegation in delegations:
            principal = delegation.principal
            if principal is not None and principal.active and str(principal.pk) in heads:
                out.append((d, principal))
                break
    return out


def redistribute(
    doc_id: Any, actor: User, user_ids: Iterable[str], note: str = "", unit_id: str | None = None
) -> list[Delivery]:
    """Let the head of a receiving unit (or the head's delegate) pass the document to staff."""
    doc = get_for(actor, doc_id, mark=False)
    options = redistributable(doc, actor)
    if unit_id:
        options = [(d, p) for d, p in options if d.unit and str(d.unit.pk) == str(unit_id)]
    if not options:
        raise Forbidden(
            "Chỉ lãnh đạo đơn vị nhận (hoặc người được lãnh đạo ủy quyền) được phân phối lại."
        )
    source, principal = options[0]
    people = _members(source.unit, user_ids)
    return _add_deliveries(
        doc, source, actor, people, "redistributed", _clean(note, 2000, "Ghi chú"), principal
    )


def staff_of(unit: Unit | None) -> list[User]:
    """Active people of a unit and the units below it."""
    if unit is None:
        return []
    return list(User.objects(unit__in=unit.subtree_ids(), active=True))
