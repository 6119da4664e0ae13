"""Register books (sổ văn bản), their number templates, reservations and cancelled numbers."""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

from mongoengine import (
    PULL,
    BooleanField,
    DateField,
    DateTimeField,
    Document,
    IntField,
    ListField,
    ReferenceField,
    StringField,
    ValidationError,
)

from models.audit import audited, utcnow
from models.counter import next_value, peek_value
from models.document_type import DocumentType
from models.organization import Unit

BOOK_DIRECTIONS = {"incoming": "Văn bản đến", "outgoing": "Văn bản đi", "internal": "Nội bộ"}

# The only names a number template may use, with a sample value for validation.
PLACEHOLDERS: dict[str, Any] = {
    "number": 5,
    "year": 2026,
    "type_abbr": "QĐ",
    "agency_abbr": "SCT",
    "unit_abbr": "VP",
}
PLACEHOLDER_LABELS = {
    "number": "số thứ tự trong sổ",
    "year": "năm",
    "type_abbr": "viết tắt loại văn bản",
    "agency_abbr": "viết tắt cơ quan",
    "unit_abbr": "viết tắt đơn vị soạn thảo",
}
DEFAULT_FORMAT = "{number:02d}/{type_abbr}-{agency_abbr}"
DEFAULT_LETTER_FORMAT = "{number:02d}/{agency_abbr}-{unit_abbr}"
VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")  # Vietnam has no daylight saving


def vn_now() -> dt.datetime:
    """Return the current time in Vietnam."""
    return dt.datetime.now(VN_TZ)


def vn_today() -> dt.date:
    """Return today's date in Vietnam."""
    return vn_now().date()


def normalize_template(template: str) -> tuple[str, list[str]]:
    """Rebuild `template` with `{number}` as `{number:02d}`; return it and its names.

    Raises ValueError when braces do not match, KeyError on an unknown name (attribute or
    index access such as `{number.real}` counts as unknown: templates go to str.format).
    """
    out, names = [], []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if conversion or name not in PLACEHOLDERS:
            raise KeyError(name + (f"!{conversion}" if conversion else ""))
        if name == "number" and not spec:
            spec = "02d"
        out.append("{" + name + (f":{spec}" if spec else "") + "}")
        names.append(name)
    return "".join(out), names


def check_template(template: str) -> str:
    """Validate a number template and return it normalized; raise ValidationError otherwise.

    Only known names are allowed (no attribute or index access: templates are formatted with
    str.format). A bare `{number}` becomes `{number:02d}`: numbers below 10 take a zero.
    """
    template = (template or "").strip()
    allowed = ", ".join("{" + k + "}" for k in PLACEHOLDERS)
    if not template:
        raise ValidationError("Mẫu số, ký hiệu không được để trống.")
    try:
        template, fields = normalize_template(template)
    except KeyError as exc:
        raise ValidationError(
            f"Mẫu số, ký hiệu có trường không được hỗ trợ: {{{exc.args[0]}}}. "
            f"Các trường dùng được: {allowed}."
        ) from None
    except ValueError:
        raise ValidationError(
            "Mẫu số, ký hiệu không hợp lệ: dấu ngoặc { } không khớp "
            "(muốn ghi chính dấu ngoặc thì viết {{ hoặc }})."
        ) from None
    if "number" not in fields:
        raise ValidationError("Mẫu số, ký hiệu phải có trường {number} (số thứ tự trong sổ).")
    try:
        template.format(**PLACEHOLDERS)
    except (ValueError, TypeError):
        raise ValidationError(
            "Mẫu số, ký hiệu có định dạng không hợp lệ, ví dụ đúng: {number:02d}/{type_abbr}-"
            "{agency_abbr}."
        ) from None
    return template


@audited
class RegisterBook(Document):
    """A register book: which documents it takes (scope) and how their numbers read."""

    name = StringField(required=True, max_length=200)
    direction = StringField(required=True, choices=list(BOOK_DIRECTIONS.items()))
    year = IntField(min_value=2000, max_value=2200)  # empty: a book for every year
    doc_types = ListField(ReferenceField(DocumentType, reverse_delete_rule=PULL))  # empty: all
    units = ListField(ReferenceField(Unit, reverse_delete_rule=PULL))  # empty: every unit
    secret = BooleanField(default=False)  # takes only secret documents (secrecy >= 1)
    number_format = StringField(required=True, max_length=120, default=DEFAULT_FORMAT)
    letter_number_format = StringField(
        required=True, max_length=120, default=DEFAULT_LETTER_FORMAT
    )  # for a công văn (a type without abbreviation)
    active = BooleanField(default=True)
    note = StringField(max_length=500)
    created_at = DateTimeField(default=utcnow)

    meta = {
        "collection": "register_book",
        "indexes": [("direction", "active", "year"), "secret", "doc_types", "units"],
        "ordering": ["direction", "-year", "name"],
    }

    def __str__(self) -> str:
        return f"{self.name} ({self.year})" if self.year else self.name or ""

    def clean(self) -> None:
        self.name = (self.name or "").strip()
        self.number_format = check_template(self.number_format)
        self.letter_number_format = check_template(self.letter_number_format)

    def counter_key(self, year: int) -> str:
        """Return the key of this book's counter for `year`."""
        return f"register_book:{self.pk}:{year}"

    def take_number(self, year: int) -> int:
        """Take the next number of `year` with one atomic $inc (01 on a year's first call)."""
        return next_value(self.counter_key(year))

    def last_number(self, year: int) -> int:
        """Return the last number taken in `year` (0 when none)."""
        return peek_value(self.counter_key(year))

    def template_for(self, doc_type: DocumentType | None) -> str:
        """Return the template for a document of `doc_type` (công văn: the letter one)."""
        if doc_type is None or doc_type.is_official_letter:
            return self.letter_number_format
        return self.number_format


RESERVATION_STATES = {"reserved": "Đang giữ", "used": "Đã dùng", "cancelled": "Đã hủy"}


class NumberReservation(Document):
    """A number taken from a book ahead of its document, by whom, why and when."""

    book = ReferenceField(RegisterBook, required=True)
    year = IntField(required=True)
    number = IntField(required=True)
    reason = StringField(required=True, max_length=500)
    status = StringField(default="reserved", choices=list(RESERVATION_STATES.items()))
    reserved_by_id = StringField()
    reserved_by_name = StringField(required=True)
    reserved_at = DateTimeField(default=utcnow)
    used_by_document = ReferenceField("Document")
    used_at = DateTimeField()
    cancelled_at = DateTimeField()
    cancel_reason = StringField(max_length=500)

    meta = {
        "collection": "number_reservation",
        "indexes": [
            {"fields": ["book", "year", "number"], "unique": True},
            ("book", "status"),
        ],
        "ordering": ["book", "year", "number"],
    }

    def __str__(self) -> str:
        return f"{self.number:02d}/{self.year}" if self.number is not None else ""


class CancelledNumber(Document):
    """A number withdrawn from a document or reservation; re-issuable the same day only."""

    book = ReferenceField(RegisterBook, required=True)
    year = IntField(required=True)
    number = IntField(required=True)
    notation = StringField(max_length=120)
    document = ReferenceField("Document")  # the document that lost it (none: a reservation)
    reason = StringField(required=True, max_length=500)
    cancelled_at = DateTimeField(default=utcnow)
    cancelled_on = DateField(required=True)  # Vietnam date: the day it may be re-issued
    cancelled_by_id = StringField()
    cancelled_by_name = StringField(required=True)
    reissued = BooleanField(default=False)
    reissued_to = ReferenceField("Document")
    reissued_at = DateTimeField()

    meta = {
        "collection": "cancelled_number",
        "indexes": [("book", "cancelled_on", "reissued"), ("book", "year", "number")],
        "ordering": ["cancelled_at"],
    }

    def __str__(self) -> str:
        return self.notation or f"{self.number:02d}/{self.year}"
