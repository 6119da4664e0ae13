"""Case files (hồ sơ), the yearly list they come from, and what search reads of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from mongoengine import (
    BooleanField,
    DateField,
    DateTimeField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    IntField,
    ObjectIdField,
    Q,
    QuerySet,
    ReferenceField,
    StringField,
)
from mongoengine import Document as MongoDocument

from models.audit import audited, utcnow
from models.document import Document
from models.organization import Agency, Unit
from models.retention import MAX_YEARS, requires_transfer, retention_label
from models.user import User

LIST_STATES = {"draft": "Đang lập", "submitted": "Chờ lãnh đạo duyệt", "approved": "Đã duyệt"}
CASE_FILE_STATES = {"open": "Đang lập", "closed": "Đã kết thúc", "archived": "Đã nộp lưu"}
TRANSFER_STATES = {
    "not_required": "Không phải nộp lưu",
    "pending": "Chưa nộp lưu",
    "transferred": "Đã nộp lưu",
}
CODE_REGEX = r"^[0-9A-Za-zĐđ][0-9A-Za-zĐđ.\-/_]{0,39}$"  # "01.TCCB", "05.KHTC-2"


class Retention(EmbeddedDocument):
    """A retention snapshot taken from the table when a list entry or a file is made."""

    code = StringField(max_length=20)  # the table row it came from, if any
    years = IntField(min_value=1, max_value=MAX_YEARS)
    permanent = BooleanField(default=False)

    @property
    def label(self) -> str:
        return retention_label(self.years, bool(self.permanent))

    @property
    def requires_transfer(self) -> bool:
        return requires_transfer(self.years, bool(self.permanent))


class CaseFileListEntry(EmbeddedDocument):
    """One planned case file of the year: code, title, retention, owner."""

    id = ObjectIdField(required=True, default=ObjectId)
    code = StringField(required=True, max_length=40, regex=CODE_REGEX)
    title = StringField(required=True, max_length=500)
    retention = EmbeddedDocumentField(Retention, required=True)
    owner_unit = ReferenceField(Unit)
    owner_user = ReferenceField(User)
    note = StringField(max_length=500)


@audited
class CaseFileList(MongoDocument):
    """The yearly list of case files (danh mục hồ sơ), approved by a leader."""

    year = IntField(required=True, unique=True, min_value=2000, max_value=2100)
    title = StringField(required=True, max_length=500)
    state = StringField(required=True, default="draft", choices=list(LIST_STATES))
    entries = EmbeddedDocumentListField(CaseFileListEntry)
    approval_document = ReferenceField(Document)  # the internal document carrying approval
    created_by_id = StringField()
    created_at = DateTimeField(default=utcnow)
    submitted_at = DateTimeField()
    approved_at = DateTimeField()
    approved_by_id = StringField()
    approved_by_name = StringField()
    version = IntField(required=True, default=1)

    meta = {
        "collection": "case_file_list",
        "ordering": ["-year"],
        "indexes": ["state", "approval_document"],
    }

    def __str__(self) -> str:
        return self.title or f"Danh mục hồ sơ năm {self.year}"

    def entry(self, entry_id: Any) -> CaseFileListEntry | None:
        return next((e for e in self.entries if str(e.id) == str(entry_id)), None)


class CaseFileItem(EmbeddedDocument):
    """A reference to a document held in the file; the document itself is not copied."""

    document = ReferenceField(Document, required=True)
    added_at = DateTimeField(default=utcnow)
    added_by_id = StringField()
    added_by_name = StringField(max_length=120)


class CaseFileQuerySet(QuerySet):
    """Queries on case files that mean something."""

    def visible_to(self, user: User) -> CaseFileQuerySet:
        """Files `user` may open: their own, their unit's, or all with an archive right."""
        if user.can("archive.search") or user.can("archive.manage"):
            return self
        scope = Q(owner_user=user.pk)
        if user.unit is not None:
            scope |= Q(owner_unit=user.unit.pk)
        return self.filter(scope)

    def holding(self, doc_id: Any) -> CaseFileQuerySet:
        return self.filter(items__document=doc_id)

    def awaiting_transfer(self) -> CaseFileQuerySet:
        """Closed files that must still go to the agency archive."""
        return self.filter(state="closed", transfer_due_on__ne=None)

    def transfer_overdue(self, today: dt.date) -> CaseFileQuerySet:
        return self.awaiting_transfer().filter(transfer_due_on__lt=today)

    def transfer_warned(self, today: dt.date) -> CaseFileQuerySet:
        """Files awaiting transfer whose deadline is within the warning period or past."""
        from models.retention import WARN_DAYS

        return self.awaiting_transfer().filter(
            transfer_due_on__lte=today + dt.timedelta(days=WARN_DAYS)
        )

    def retention_ended(self, today: dt.date) -> CaseFileQuerySet:
        """Files whose retention is over: candidates for a destruction proposal."""
        return self.filter(state__in=["closed", "archived"], retention_ends_on__lte=today)


@audited
class CaseFile(MongoDocument):
    """A case file: documents about one matter, kept together and transferred together."""

    code = StringField(required=True, max_length=40, regex=CODE_REGEX)  # file notation
    title = StringField(required=True, max_length=500)
    year = IntField(required=True, min_value=2000, max_value=2100)
    source_list = ReferenceField(CaseFileList)  # None: opened ad hoc
    list_entry_id = ObjectIdField()
    retention = EmbeddedDocumentField(Retention, required=True)
    owner_user = ReferenceField(User)
    owner_unit = ReferenceField(Unit)
    state = StringField(required=True, default="open", choices=list(CASE_FILE_STATES))
    items = EmbeddedDocumentListField(CaseFileItem)
    start_on = DateField()
    end_on = DateField()
    document_count = IntField(default=0)
    page_count = IntField(default=0)
    language = StringField(default="Tiếng Việt", max_length=60)
    note = StringField(max_length=2000)
    opened_at = DateTimeField(default=utcnow)
    opened_by_id = StringField()
    closed_at = DateTimeField()
    closed_on = DateField()  # the day the work ended, in Vietnam
    closed_by_id = StringField()
    transfer_due_on = DateField()  # None: not to be transferred (or transferred already)
    retention_ends_on = DateField()  # None: permanent
    transfer_document = ReferenceField(Document)  # the hand-over record carrying the transfer
    transferred_at = DateTimeField()
    transferred_by_id = StringField()
    transferred_by_name = StringField(max_length=120)
    version = IntField(required=True, default=1)  # optimistic concurrency

    meta = {
        "collection": "case_file",
        "queryset_class": CaseFileQuerySet,
        "ordering": ["-year", "code"],
        "indexes": [
            {"fields": ["year", "code"], "unique": True},
            "state",
            "owner_user",
            "owner_unit",
            "source_list",
            "items.document",
            "transfer_due_on",
            "retention_ends_on",
            "transfer_document",
        ],
    }

    def __str__(self) -> str:
        return f"{self.code} – {self.title}"

    @property
    def frozen(self) -> bool:
        """Transferred files are read-only."""
        return self.state == "archived"

    @property
    def transfer_state(self) -> str:
        return transfer_state_of(self.state, self.retention.years, bool(self.retention.permanent))

    def full_code(self, agency: Agency | None = None) -> str:
        """Return the file code: agency identifier, year, file notation."""
        agency = agency or Agency.current()
        organ = (agency.organ_id or agency.abbreviation) if agency else ""
        return ".".join(p for p in (organ, str(self.year), self.code) if p)

    def holds(self, doc_id: Any) -> bool:
        return any(str(i.document.pk) == str(doc_id) for i in self.items if i.document)

    def owned_by(self, user: User) -> bool:
        """Tell whether `user` is the owner or works in the owner unit."""
        if self.owner_user is not None and self.owner_user.pk == user.pk:
            return True
        return (
            self.owner_unit is not None
            and user.unit is not None
            and self.owner_unit.pk == user.unit.pk
        )

    def can_view(self, user: User) -> bool:
        """Tell whether `user` may open this file (owner, owner unit, or an archive right)."""
        return user.can("archive.search") or user.can("archive.manage") or self.owned_by(user)

    def can_edit(self, user: User) -> bool:
        """Tell whether `user` may change the file (until it is transferred)."""
        return user.can("archive.manage") or self.owned_by(user)

    def principals(self) -> list[str]:
        """Who may find this file, as search-index principals."""
        out = [f"perm:{p}" for p in ("archive.search", "archive.manage")]
        if self.owner_user is not None:
            out.append(f"user:{self.owner_user.pk}")
        if self.owner_unit is not None:
            out.append(f"unit:{self.owner_unit.pk}")
        return out

    def summary(self) -> dict[str, Any]:
        """Return the file as lists and the API show it."""
        return {
            "id": str(self.pk),
            "code": self.code,
            "full_code": self.full_code(),
            "title": self.title,
            "year": self.year,
            "retention": self.retention.label,
            "retention_years": self.retention.years,
            "retention_permanent": bool(self.retention.permanent),
            "state": self.state,
            "state_label": CASE_FILE_STATES[self.state],
            "transfer_state": self.transfer_state,
            "transfer_due_on": _iso(self.transfer_due_on),
            "owner_user": self.owner_user.full_name if self.owner_user else None,
            "owner_unit": self.owner_unit.name if self.owner_unit else None,
            "start_on": _iso(self.start_on),
            "end_on": _iso(self.end_on),
            "document_count": self.document_count if self.state != "open" else len(self.items),
            "page_count": self.page_count,
            "version": self.version,
        }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


# What search reads ------------------------------------------------------------------------


def transfer_state_of(state: str, years: int | None, permanent: bool) -> str:
    """Return a file's transfer state: "transferred", "pending" or "not_required"."""
    if state == "archived":
        return "transferred"
    return "pending" if requires_transfer(years, permanent) else "not_required"


def retention_key(years: int | None, permanent: bool) -> str:
    """Return the retention as search filters it: "permanent" or the number of years."""
    return "permanent" if permanent else str(years or "")


def holders_of(doc_ids: list[Any] | None) -> dict[str, list[tuple[str, str, str]]]:
    """Return ``{document id: [(case file id, retention key, transfer state)]}``.

    One query for a batch of documents (search indexes in batches); None means every
    document held in any file.
    """
    query: dict[str, Any] = {}
    wanted: set[str] | None = None
    if doc_ids is not None:
        oids = [ObjectId(str(i)) for i in doc_ids if ObjectId.is_valid(str(i))]
        if not oids:
            return {}
        query = {"items.document": {"$in": oids}}
        wanted = {str(i) for i in oids}
    out: dict[str, list[tuple[str, str, str]]] = {}
    fields = {"state": 1, "retention": 1, "items.document": 1}
    for row in CaseFile._get_collection().find(query, fields):
        retention = row.get("retention") or {}
        years, permanent = retention.get("years"), bool(retention.get("permanent"))
        tag = (
            str(row["_id"]),
            retention_key(years, permanent),
            transfer_state_of(row.get("state", "open"), years, permanent),
        )
        for item in row.get("items") or []:
            doc_id = str(item.get("document"))
            if wanted is None or doc_id in wanted:
                out.setdefault(doc_id, []).append(tag)
    return out
