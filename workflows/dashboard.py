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


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def dashboard(
    user: User, year: int | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the figures of the user's dashboard, over the documents they may see."""
    now = now or utcnow()
    year = year or now.year
    visible = Document.objects.visible_to(user).filter(migrated=False)
    # One projected scan, counted here: the embedded store (mongomock) runs aggregation
    # pipelines in pure Python far slower than this, and MongoDB serves it from indexes.
    fields = {
        "direction": 1,
        "state": 1,
        "created_at": 1,
        "due_at": 1,
        "closed": 1,
        "assignments.status": 1,
        "assignments.unit": 1,
        "owner_unit_id": 1,
    }
    by_state: Counter[tuple[str, str]] = Counter()
    months = {"incoming": [0] * 12, "outgoing": [0] * 12, "internal": [0] * 12}
    overdue_units: Counter[str] = Counter()
    for row in Document._get_collection().find(visible._query, fields):
        by_state[(row["direction"], row["state"])] += 1
        created = row.get("created_at")
        if created is not None and created.year == year:
            months[row["direction"]][created.month - 1] += 1
        due = row.get("due_at")
        if due is not None and not row.get("closed") and _aware(due) < now:
            units = {
                str(a["unit"])
                for a in row.get("assignments") or []
                if a.get("status") == "open" and a.get("unit")
            }
            for uid in units or {row.get("owner_unit_id")}:
                if uid:
                    overdue_units[uid] += 1
    names = {str(u.pk): u.name for u in Unit.objects(pk__in=list(overdue_units))}
    mine = Document.objects.awaiting(principals_of(user)).filter(secrecy__lte=user.clearance or 0)
    return {
        "year": year,
        "by_state": dict(by_state),
        "months": months,
        "overdue_by_unit": sorted(
            ((names.get(k, "Khác"), v) for k, v in overdue_units.items()), key=lambda item: -item[1]
        ),
        "my_pending": mine.count(),
        "my_overdue": mine.overdue(now).count(),
        "my_due_soon": mine.due_soon(now).count(),
    }
