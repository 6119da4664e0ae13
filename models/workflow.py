"""Workflow definitions are data: a draft an admin edits and immutable published versions."""

from __future__ import annotations

from typing import Any

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    StringField,
)

from models.audit import audited, utcnow


@audited
class WorkflowDefinition(Document):
    """A processing flow: which documents it applies to, its editable draft, its versions."""

    code = StringField(required=True, unique=True, max_length=60, regex=r"^[a-z0-9_]+$")
    name = StringField(required=True, max_length=200)
    directions = ListField(StringField(choices=["incoming", "outgoing", "internal"]))
    doc_type_abbrs = ListField(StringField(max_length=20))  # empty: every type
    kind = StringField(default="document", choices=["document", "opinion", "case_file"])
    draft = DictField()  # the spec being edited (states, transitions, circuits)
    draft_updated_at = DateTimeField(default=utcnow)
    draft_updated_by = StringField()
    published_version = IntField(default=0)  # 0: never published
    active = BooleanField(default=True)

    meta = {"collection": "workflow_definition", "indexes": ["directions", "kind"]}

    def __str__(self) -> str:
        return self.name or self.code or ""

    @property
    def has_unpublished_changes(self) -> bool:
        latest = WorkflowVersion.objects(code=self.code, version=self.published_version).first()
        return latest is None or latest.spec != self.draft


class WorkflowVersion(Document):
    """An immutable, validated version of a definition; documents pin one."""

    code = StringField(required=True, max_length=60)
    version = IntField(required=True)
    spec = DictField(required=True)
    published_at = DateTimeField(default=utcnow)
    published_by = StringField()

    meta = {
        "collection": "workflow_version",
        "indexes": [{"fields": ["code", "version"], "unique": True}],
    }

    def save(self, *args: Any, **kwargs: Any) -> WorkflowVersion:
        if self.pk is not None:
            raise PermissionError("published workflow versions are immutable")
        return super().save(*args, **kwargs)
