"""Document types and their Decree 30 abbreviations (Appendix III)."""

from __future__ import annotations

from mongoengine import BooleanField, Document, IntField, StringField

from models.audit import audited


@audited
class DocumentType(Document):
    """A document type; an empty abbreviation means a công văn (official letter)."""

    name = StringField(required=True, unique=True, max_length=120)
    abbreviation = StringField(max_length=20, default="")
    active = BooleanField(default=True)
    order = IntField(default=100)

    meta = {"collection": "document_type", "ordering": ["order", "name"]}

    def __str__(self) -> str:
        return f"{self.name} ({self.abbreviation})" if self.abbreviation else self.name or ""

    @property
    def is_official_letter(self) -> bool:
        return not self.abbreviation
