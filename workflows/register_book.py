"""Register books: choosing a book, numbering, reservations, cancellation, duplicates."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Any

from mongoengine import Q

from models import audit
from models.audit import Actor, current_actor, utcnow
from models.document import Document
from models.document_type import DocumentType
from models.organization import Agency, Unit
from models.register_book import (
    DEFAULT_LETTER_FORMAT,
    PLACEHOLDER_LABELS,
    CancelledNumber,
    NumberReservation,
    RegisterBook,
    normalize_template,
    vn_today,
)
from models.user import User
from workflows.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)

# mongomock's updates are not atomic across threads; the filtered update_one calls below are
# on MongoDB, and the lock costs nothing there (the same reasoning as models.counter).
_claim_lock = threading.Lock()

ActorLike = User | Actor | str | None


class RegisterError(ValidationFailed):
    code = "register_error"
    message = "Không cấp được số văn bản."


class NoRegisterBook(NotFound):
    code = "no_register_book"
    message = "Không có sổ văn bản phù hợp."


class AmbiguousRegisterBook(RegisterError):
    code = "ambiguous_register_book"


class BookMismatch(RegisterError):
    code = "book_mismatch"


class AlreadyNumbered(Conflict):
    code = "already_numbered"
    message = "Văn bản đã được cấp số."


class ReservationUnavailable(Conflict):
    code = "reservation_unavailable"
    message = "Số giữ trước không còn dùng được."


class ReissueNotAllowed(Conflict):
    code = "reissue_not_allowed"
    message = "Chỉ cấp lại được số bị hủy trong cùng ngày."


class DuplicateDocument(Conflict):
    """Raised when a document looks registered already and nobody confirmed it."""

    code = "duplicate_document"

    def __init__(self, duplicates: list[Document]) -> None:
        labels = "; ".join(_doc_label(d) for d in duplicates[:5])
        super().__init__(
            f"Văn bản có thể đã được đăng ký: {labels}. Kiểm tra lại và xác nhận nếu vẫn muốn "
            "đăng ký."
        )
        self.duplicates = duplicates


# Helpers ---------------------------------------------------------------------------------


def _as_actor(actor: ActorLike) -> Actor:
    """Turn a user, an actor, a user id or None (the current actor) into an Actor."""
    if actor is None:
        return current_actor()
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, User):
        return Actor(user_id=str(actor.pk), name=actor.full_name)
    now = current_actor()
    if now.user_id == actor:
        return now  # keeps the request's address and "on behalf of"
    user = User.objects(pk=actor).only("full_name").first()
    return Actor(user_id=actor, name=user.full_name if user else actor)


def _doc_label(doc: Document) -> str:
    number = doc.notation or (f"số đến {doc.arrival_number:02d}" if doc.arrival_number else "")
    return f"{number} ({doc.subject[:60]})" if number else doc.subject[:60]


def _record(action: str, doc: Document | None, actor: Actor, detail: dict[str, Any]) -> None:
    if doc is None:
        audit.record(
            action,
            object_type="RegisterBook",
            object_id=detail.get("book_id"),
            label=detail.get("book"),
            detail=detail,
            actor=actor,
        )
        return
    audit.record(
        action,
        object_type="Document",
        object_id=str(doc.pk) if doc.pk else None,
        label=str(doc),
        detail=detail,
        actor=actor,
    )


def _fmt(number: int) -> str:
    return f"{number:02d}"


def _unit_of(doc: Document) -> Unit | None:
    """Return the unit that scopes a document: the drafting unit, else the owner unit."""
    if doc.issuer_unit is not None:
        return doc.issuer_unit
    if doc.owner_unit_id:
        return Unit.objects(pk=doc.owner_unit_id).first()
    return None


def _secret(doc: Document) -> bool:
    return (doc.secrecy or 0) >= 1


# Choosing a book -------------------------------------------------------------------------


def book_refusal(book: RegisterBook, doc: Document, year: int | None = None) -> str | None:
    """Return why `book` cannot take `doc` (Vietnamese), or None when it can."""
    year = year or vn_today().year
    if not book.active:
        return f"Sổ «{book}» đã ngừng sử dụng."
    if book.direction != doc.direction:
        return f"Sổ «{book}» không dùng cho loại văn bản này (đến/đi/nội bộ)."
    if book.year and book.year != year:
        return f"Sổ «{book}» dành cho năm {book.year}, không dùng cho năm {year}."
    if _secret(doc) and not book.secret:
        return f"Văn bản mật phải vào sổ riêng cho văn bản mật, không vào sổ «{book}»."
    if book.secret and not _secret(doc):
        return f"Sổ «{book}» chỉ dành cho văn bản mật."
    if book.doc_types and (
        doc.doc_type is None or doc.doc_type.pk not in {t.pk for t in book.doc_types if t}
    ):
        return f"Sổ «{book}» không nhận loại văn bản «{doc.doc_type_name or doc.doc_type}»."
    if book.units:
        unit = _unit_of(doc)
        scope = {u.pk for u in book.units if u}
        if unit is None or not ({unit.pk, *unit.ancestors} & scope):
            return f"Sổ «{book}» không dùng cho đơn vị của văn bản này."
    return None


def book_for(doc: Document, *, year: int | None = None) -> RegisterBook:
    """Return the register book `doc` goes into: the most specific active book that fits."""
    year = year or vn_today().year
    candidates = RegisterBook.objects(
        Q(year=year) | Q(year=None),
        direction=doc.direction,
        active=True,
        secret=_secret(doc),
    )
    fitting = [b for b in candidates if book_refusal(b, doc, year) is None]
    if not fitting:
        kind = {"incoming": "văn bản đến", "outgoing": "văn bản đi", "internal": "văn bản nội bộ"}
        mat = " mật" if _secret(doc) else ""
        raise NoRegisterBook(
            f"Chưa có sổ {kind.get(doc.direction, '')}{mat} năm {year} phù hợp với văn bản "
            "này. Vui lòng tạo sổ trong mục Văn thư > Danh mục sổ văn bản."
        )

    def score(b: RegisterBook) -> tuple[int, int]:
        return (int(bool(b.doc_types)) + int(bool(b.units)), int(b.year is not None))

    best = max(score(b) for b in fitting)
    top = [b for b in fitting if score(b) == best]
    if len(top) > 1:
        names = ", ".join(f"«{b}»" for b in top)
        raise AmbiguousRegisterBook(
            f"Có nhiều sổ cùng phù hợp ({names}): chọn sổ khi cấp số, hoặc sửa phạm vi sổ."
        )
    return top[0]


def _resolve_book(doc: Document, book: RegisterBook | None, year: int) -> RegisterBook:
    if book is None:
        return book_for(doc, year=year)
    refusal = book_refusal(book, doc, year)
    if refusal:
        raise BookMismatch(refusal)
    return book


# Notation ----------------------------------------------------------------------------------


def _notation_values(doc: Document, year: int) -> dict[str, Any]:
    agency = Agency.current()
    unit = _unit_of(doc)
    doc_type: DocumentType | None = doc.doc_type
    return {
        "year": year,
        "type_abbr": doc_type.abbreviation if doc_type else "",
        "agency_abbr": agency.abbreviation if agency else "",
        "unit_abbr": unit.abbreviation if unit else "",
    }


def _prepare_notation(book: RegisterBook, doc: Document, year: int) -> tuple[str, dict[str, Any]]:
    """Check every value the template needs is there, before a number is spent."""
    template = book.template_for(doc.doc_type)
    values = _notation_values(doc, year)
    _, names = normalize_template(template)
    for name in names:
        if name != "number" and not values.get(name):
            raise RegisterError(
                f"Không tạo được số, ký hiệu theo mẫu «{template}» của sổ «{book}»: "
                f"thiếu {PLACEHOLDER_LABELS[name]}."
            )
    return template, values


def render_notation(book: RegisterBook, doc: Document, number: int, year: int) -> str:
    """Return the number and notation `doc` gets in `book` for `number`."""
    template, values = _prepare_notation(book, doc, year)
    return template.format(number=number, **values)


# Numbering ---------------------------------------------------------------------------------


def _check_numberable(doc: Document) -> None:
    if doc.direction not in ("outgoing", "internal"):
        raise RegisterError(
            "Chỉ cấp số cho văn bản đi và văn bản nội bộ; văn bản đến được cấp số đến."
        )
    if doc.number is not None or doc.register_book is not None:
        raise AlreadyNumbered(f"Văn bản đã được cấp số {doc.notation or doc.number}.")
    if doc.doc_type is None:
        raise RegisterError("Văn bản chưa có loại văn bản: chọn loại trước khi cấp số.")
    if doc.migrated:
        raise RegisterError("Văn bản chuyển đổi từ hệ thống cũ không được cấp số mới.")


def _apply(doc: Document, book: RegisterBook, number: int, notation: str, year: int) -> None:
    doc.number = number
    doc.notation = notation
    doc.register_book = book
    doc.registered_year = year
    if doc.issued_on is None:
        doc.issued_on = vn_today()


def assign_number(
    doc: Document,
    *,
    actor_id: str | None = None,
    book: RegisterBook | None = None,
    reserved_number: int | None = None,
) -> None:
    """Give an outgoing or internal document its number, notation and date (unsaved)."""
    _check_numberable(doc)
    year = vn_today().year
    book = _resolve_book(doc, book, year)
    template, values = _prepare_notation(book, doc, year)
    actor = _as_actor(actor_id)
    if reserved_number is not None:
        update: dict[str, Any] = {"set__status": "used", "set__used_at": utcnow()}
        if doc.pk is not None:
            update["set__used_by_document"] = doc
        with _claim_lock:
            claimed = NumberReservation.objects(
                book=book, year=year, number=reserved_number, status="reserved"
            ).update_one(**update)
        if not claimed:
            raise ReservationUnavailable(
                f"Số {_fmt(reserved_number)} của sổ «{book}» năm {year} không được giữ trước "
                "hoặc đã dùng, đã hủy."
            )
        number = reserved_number
    else:
        number = book.take_number(year)
    notation = template.format(number=number, **values)
    _apply(doc, book, number, notation, year)
    _record(
        "register.number_assigned",
        doc,
        actor,
        {
            "book_id": str(book.pk),
            "book": str(book),
            "year": year,
            "number": number,
            "notation": notation,
            "reserved": reserved_number is not None,
        },
    )
    log.info("number assigned book=%s year=%s number=%s", book.pk, year, number)


def assign_arrival_number(
    doc: Document, *, actor_id: str | None = None, book: RegisterBook | None = None
) -> None:
    """Give an incoming document its arrival number (số đến) and arrival time (unsaved)."""
    if doc.direction != "incoming":
        raise RegisterError("Chỉ văn bản đến mới được cấp số đến.")
    if doc.arrival_number is not None:
        raise AlreadyNumbered(f"Văn bản đã có số đến {_fmt(doc.arrival_number)}.")
    if doc.migrated:
        raise RegisterError("Văn bản chuyển đổi từ hệ thống cũ không được cấp số đến mới.")
    year = vn_today().year
    book = _resolve_book(doc, book, year)
    number = book.take_number(year)
    doc.arrival_number = number
    doc.register_book = book
    doc.registered_year = year
    if doc.arrival_at is None:
        doc.arrival_at = utcnow()
    _record(
        "register.arrival_number_assigned",
        doc,
        _as_actor(actor_id),
        {"book_id": str(book.pk), "book": str(book), "year": year, "arrival_number": number},
    )
    log.info("arrival number assigned book=%s year=%s number=%s", book.pk, year, number)


def _require_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(f"Vui lòng nhập lý do {what}.")
    return reason[:500]


def reserve_number(book: RegisterBook, actor: ActorLike, reason: str) -> int:
    """Take the next number of `book` now for a document to come; return it."""
    reason = _require_reason(reason, "giữ số")
    if book.direction == "incoming":
        raise RegisterError("Không giữ trước số đến: số đến được cấp theo thứ tự nhận.")
    year = vn_today().year
    if not book.active or (book.year and book.year != year):
        raise BookMismatch(f"Sổ «{book}» không dùng được cho năm {year}.")
    who = _as_actor(actor)
    number = book.take_number(year)
    NumberReservation(
        book=book,
        year=year,
        number=number,
        reason=reason,
        reserved_by_id=who.user_id,
        reserved_by_name=who.name,
    ).save()
    _record(
        "register.number_reserved",
        None,
        who,
        {
            "book_id": str(book.pk),
            "book": str(book),
            "year": year,
            "number": number,
            "reason": reason,
        },
    )
    return number


def cancel_reservation(
    book: RegisterBook, number: int, actor: ActorLike, reason: str, *, year: int | None = None
) -> CancelledNumber:
    """Withdraw a reserved number; it may be re-issued today."""
    reason = _require_reason(reason, "hủy số giữ trước")
    year = year or vn_today().year
    who = _as_actor(actor)
    with _claim_lock:
        done = NumberReservation.objects(
            book=book, year=year, number=number, status="reserved"
        ).update_one(set__status="cancelled", set__cancelled_at=utcnow(), set__cancel_reason=reason)
    if not done:
        raise ReservationUnavailable(
            f"Số {_fmt(number)} của sổ «{book}» năm {year} không ở trạng thái giữ trước."
        )
    cancelled = CancelledNumber(
        book=book,
        year=year,
        number=number,
        reason=reason,
        cancelled_on=vn_today(),
        cancelled_by_id=who.user_id,
        cancelled_by_name=who.name,
    ).save()
    _record(
        "register.reservation_cancelled",
        None,
        who,
        {
            "book_id": str(book.pk),
            "book": str(book),
            "year": year,
            "number": number,
            "reason": reason,
        },
    )
    return cancelled


def cancel_number(doc: Document, actor: ActorLike, reason: str) -> CancelledNumber:
    """Take the number back from an outgoing or internal document (unsaved document)."""
    reason = _require_reason(reason, "hủy số")
    if doc.direction not in ("outgoing", "internal"):
        raise RegisterError("Chỉ hủy được số của văn bản đi và văn bản nội bộ.")
    if doc.number is None or doc.register_book is None or doc.registered_year is None:
        raise RegisterError("Văn bản chưa được cấp số nên không có số để hủy.")
    who = _as_actor(actor)
    book: RegisterBook = doc.register_book
    cancelled = CancelledNumber(
        book=book,
        year=doc.registered_year,
        number=doc.number,
        notation=doc.notation,
        document=doc if doc.pk else None,
        reason=reason,
        cancelled_on=vn_today(),
        cancelled_by_id=who.user_id,
        cancelled_by_name=who.name,
    ).save()
    _record(
        "register.number_cancelled",
        doc,
        who,
        {
            "book_id": str(book.pk),
            "book": str(book),
            "year": doc.registered_year,
            "number": doc.number,
            "notation": doc.notation,
            "reason": reason,
        },
    )
    doc.number = None
    doc.notation = None
    doc.register_book = None
    doc.registered_year = None
    return cancelled


def reissuable_numbers(book: RegisterBook, *, on: dt.date | None = None) -> list[CancelledNumber]:
    """Return the numbers of `book` cancelled today and not re-issued yet."""
    return list(
        CancelledNumber.objects(book=book, cancelled_on=on or vn_today(), reissued=False).order_by(
            "number"
        )
    )


def reissue_cancelled_number(
    book: RegisterBook,
    doc: Document,
    *,
    number: int | None = None,
    actor_id: str | None = None,
) -> int:
    """Give `doc` a number of `book` cancelled today (the lowest, or `number`); return it."""
    _check_numberable(doc)
    today = vn_today()
    year = today.year
    book = _resolve_book(doc, book, year)
    template, values = _prepare_notation(book, doc, year)
    query = CancelledNumber.objects(book=book, year=year, reissued=False)
    if number is not None:
        query = query.filter(number=number)
    todays = [c for c in query.order_by("number") if c.cancelled_on == today]
    if not todays:
        older = query.first()
        if number is not None and older is not None:
            raise ReissueNotAllowed(
                f"Số {_fmt(number)} bị hủy ngày {older.cancelled_on:%d/%m/%Y}: chỉ cấp lại được "
                "số bị hủy trong cùng ngày."
            )
        raise ReissueNotAllowed(f"Hôm nay sổ «{book}» không có số bị hủy để cấp lại.")
    update: dict[str, Any] = {"set__reissued": True, "set__reissued_at": utcnow()}
    if doc.pk is not None:
        update["set__reissued_to"] = doc
    chosen: CancelledNumber | None = None
    for candidate in todays:
        with _claim_lock:
            if CancelledNumber.objects(pk=candidate.pk, reissued=False).update_one(**update):
                chosen = candidate
                break
    if chosen is None:
        raise ReissueNotAllowed("Số bị hủy vừa được cấp cho văn bản khác. Vui lòng thử lại.")
    notation = template.format(number=chosen.number, **values)
    _apply(doc, book, chosen.number, notation, year)
    _record(
        "register.number_reissued",
        doc,
        _as_actor(actor_id),
        {
            "book_id": str(book.pk),
            "book": str(book),
            "year": year,
            "number": chosen.number,
            "notation": notation,
            "cancelled_notation": chosen.notation,
        },
    )
    return int(chosen.number)


# Duplicates --------------------------------------------------------------------------------


def _year_of(doc: Document) -> int:
    if doc.issued_on is not None:
        return int(doc.issued_on.year)
    return int(doc.registered_year or vn_today().year)


def _iexact(value: str) -> dict[str, Any]:
    return {"$regex": "^" + re.escape(value.strip()) + "$", "$options": "i"}


def find_duplicates(doc: Document) -> list[Document]:
    """Return documents `doc` would duplicate, so the screen can warn and ask to confirm.

    Incoming: the same number and notation from the same issuer in the same year.
    Outgoing and internal: the same number in the same book and year, or the same notation
    in the same year.
    """
    others = Document.objects(pk__ne=doc.pk) if doc.pk else Document.objects
    if doc.direction == "incoming":
        if not (doc.notation or "").strip() or not (doc.issuer or "").strip():
            return []
        year = _year_of(doc)
        in_year = Q(issued_on__gte=dt.date(year, 1, 1), issued_on__lte=dt.date(year, 12, 31)) | Q(
            issued_on=None, registered_year=year
        )
        query = others.filter(
            Q(direction="incoming")
            & Q(__raw__={"notation": _iexact(doc.notation), "issuer": _iexact(doc.issuer)})
            & in_year
        )
        return list(query)
    clauses = []
    if doc.register_book is not None and doc.number is not None and doc.registered_year:
        clauses.append(
            Q(
                register_book=doc.register_book,
                registered_year=doc.registered_year,
                number=doc.number,
            )
        )
    if (doc.notation or "").strip():
        # Secret books keep their own sequence: 01/QĐ-SCT may exist once in each.
        secrecy = Q(secrecy__gte=1) if _secret(doc) else Q(secrecy__lt=1)
        clauses.append(
            Q(direction__in=["outgoing", "internal"], registered_year=_year_of(doc))
            & secrecy
            & Q(__raw__={"notation": _iexact(doc.notation)})
        )
    if not clauses:
        return []
    combined = clauses[0]
    for clause in clauses[1:]:
        combined |= clause
    return list(others.filter(combined))


def check_duplicates(
    doc: Document, *, confirmed: bool = False, actor_id: str | None = None
) -> list[Document]:
    """Raise DuplicateDocument unless confirmed; log a confirmed duplicate; return them."""
    duplicates = find_duplicates(doc)
    if duplicates and not confirmed:
        raise DuplicateDocument(duplicates)
    if duplicates:
        _record(
            "register.duplicate_confirmed",
            doc,
            _as_actor(actor_id),
            {"duplicates": [str(d.pk) for d in duplicates[:20]], "notation": doc.notation},
        )
    return duplicates


# Seed --------------------------------------------------------------------------------------


def seed_register_books(year: int | None = None) -> None:
    """Create the usual books of `year` (default: this year) when missing (idempotent)."""
    year = year or vn_today().year
    letter = DocumentType.objects(abbreviation="").first()
    books: list[dict[str, Any]] = [
        {"name": "Sổ văn bản đến", "direction": "incoming"},
        {"name": "Sổ văn bản đến Mật", "direction": "incoming", "secret": True},
        {"name": "Sổ văn bản đi", "direction": "outgoing"},
        {
            "name": "Sổ công văn đi",
            "direction": "outgoing",
            "doc_types": [letter] if letter else [],
            "number_format": DEFAULT_LETTER_FORMAT,
        },
        {"name": "Sổ văn bản đi Mật", "direction": "outgoing", "secret": True},
        {"name": "Sổ văn bản nội bộ", "direction": "internal"},
    ]
    for spec in books:
        if not RegisterBook.objects(name=spec["name"], year=year).first():
            RegisterBook(year=year, **spec).save()
