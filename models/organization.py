"""The agency, its unit tree and the positions people hold."""

from __future__ import annotations

from typing import Any

from mongoengine import (
    BooleanField,
    Document,
    IntField,
    ListField,
    ObjectIdField,
    ReferenceField,
    StringField,
    ValidationError,
)

from models.audit import audited

UNIT_KINDS = {
    "leadership": "Lãnh đạo cơ quan",
    "office": "Văn phòng",
    "department": "Phòng ban",
    "inspectorate": "Thanh tra",
    "subsidiary": "Đơn vị trực thuộc",
}

# What a position means to the workflow engine ("head of the drafting unit", deputies).
POSITION_LEVELS = {
    "agency_head": "Người đứng đầu cơ quan",
    "agency_deputy": "Cấp phó của người đứng đầu cơ quan",
    "unit_head": "Trưởng đơn vị",
    "unit_deputy": "Cấp phó đơn vị",
    "staff": "Chuyên viên, nhân viên",
}


@audited
class Agency(Document):
    """The issuing body (cơ quan) that this installation serves."""

    name = StringField(required=True, max_length=300)
    abbreviation = StringField(required=True, max_length=30)  # used in notation: QĐ-SCT
    organ_id = StringField(max_length=40)  # edXML OrganId, e.g. 000.00.19.H18
    parent_name = StringField(max_length=300)  # governing body printed above the name
    address = StringField(max_length=500)
    place = StringField(max_length=100)  # place name printed before the date
    phone = StringField(max_length=40)
    email = StringField(max_length=200)

    meta = {"collection": "agency"}

    def __str__(self) -> str:
        return self.name or ""

    @classmethod
    def current(cls) -> Agency | None:
        """Return the agency this installation serves."""
        return cls.objects.first()


@audited
class Unit(Document):
    """A unit of the agency (Văn phòng, phòng ban, đơn vị trực thuộc); a tree."""

    name = StringField(required=True, max_length=300)
    abbreviation = StringField(required=True, max_length=30)
    kind = StringField(required=True, choices=list(UNIT_KINDS.items()), default="department")
    parent = ReferenceField("Unit", reverse_delete_rule=3)  # DENY deleting a parent
    ancestors = ListField(ObjectIdField())  # parent chain, root first; kept by save()
    order = IntField(default=0)
    active = BooleanField(default=True)

    meta = {
        "collection": "unit",
        "indexes": ["parent", "ancestors", "abbreviation"],
        "ordering": ["order", "name"],
    }

    def __str__(self) -> str:
        return self.name or ""

    def clean(self) -> None:
        chain: list[Any] = []
        node = self.parent
        while node is not None:
            if self.pk is not None and node.pk == self.pk:
                raise ValidationError("Đơn vị cha không được là chính nó hoặc đơn vị cấp dưới.")
            chain.insert(0, node.pk)
            node = node.parent
        self.ancestors = chain

    def subtree_ids(self) -> list[Any]:
        """Return the ids of this unit and every unit below it."""
        return [self.pk] + [u.pk for u in Unit.objects(ancestors=self.pk).only("id")]


@audited
class Position(Document):
    """A title people hold (Giám đốc, Trưởng phòng, Chuyên viên, Văn thư...)."""

    name = StringField(required=True, unique=True, max_length=120)
    level = StringField(required=True, choices=list(POSITION_LEVELS.items()), default="staff")
    order = IntField(default=100)

    meta = {"collection": "position", "ordering": ["order", "name"]}

    def __str__(self) -> str:
        return self.name or ""
