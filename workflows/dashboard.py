"""Dashboard figures: counts by state, overdue by unit, documents per month."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from models.audit import utcnow
from models.document import Document
from models.organization import Unit
from models.user import User
from workflows.rules import principals_of


def dashboard(
    user: User, year: int | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the figures of the user's dashboard, over the documents they may see."""
    now = now or utcnow()
    year = year or now.year
    visible = Document.objects.visible_to(user).filter(migrated=False)
    match = visible._query
    by_state = {
        (row["_id"]["direction"], row["_id"]["state"]): row["count"]
        for row in Document.objects.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {"direction": "$direction", "state": "$state"},
                        "count": {"$sum": 1},
                    }
                },
            ]
        )
    }
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    months = {"incoming": [0] * 12, "outgoing": [0] * 12, "internal": [0] * 12}
    for row in Document.objects.aggregate(
        [
            {
                "$match": {
                    **match,
                    "created_at": {"$gte": start, "$lt": start.replace(year=year + 1)},
                }
            },
            {
                "$group": {
                    "_id": {"d": "$direction", "m": {"$month": "$created_at"}},
                    "count": {"$sum": 1},
                }
            },
        ]
    ):
        months[row["_id"]["d"]][row["_id"]["m"] - 1] = row["count"]
    overdue_units: Counter[str] = Counter()
    for doc in visible.overdue(now).only("assignments", "owner_unit_id"):
        unit_ids = {str(a.unit.pk) for a in doc.assignments if a.status == "open" and a.unit}
        unit_ids |= {
            str(a.user.unit.pk)
            for a in doc.assignments
            if a.status == "open" and a.user and a.user.unit
        }
        for uid in unit_ids or {doc.owner_unit_id}:
            if uid:
                overdue_units[uid] += 1
    names = {str(u.pk): u.name for u in Unit.objects(pk__in=list(overdue_units))}
    mine = Document.objects.awaiting(principals_of(user)).filter(secrecy__lte=user.clearance or 0)
    return {
        "year": year,
        "by_state": by_state,
        "months": months,
        "overdue_by_unit": sorted(
            ((names.get(k, "Khác"), v) for k, v in overdue_units.items()), key=lambda item: -item[1]
        ),
        "my_pending": mine.count(),
        "my_overdue": mine.overdue(now).count(),
        "my_due_soon": mine.due_soon(now).count(),
    }
