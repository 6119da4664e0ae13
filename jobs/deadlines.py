"""Periodic deadline work: due-soon and overdue reminders, workflow escalations."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from models.audit import utcnow
from models.document import DUE_SOON, Document
from workflows.notification import notify
from workflows.rules import users_for
from workflows.workflow_definition import version_spec

log = logging.getLogger(__name__)


def run_deadlines(now_iso: str | None = None) -> dict[str, int]:
    """Send due-soon and overdue reminders and run escalations; each is sent once."""
    now = dt.datetime.fromisoformat(now_iso) if now_iso else utcnow()
    sent = {"due_soon": 0, "overdue": 0, "escalated": 0}
    open_docs = Document.objects(closed=False, migrated=False, due_at__ne=None).only(
        "subject", "due_at", "pending_user_ids", "state", "notation"
    )
    for doc in open_docs.filter(due_at__lt=now + DUE_SOON):
        due = _aware(doc.due_at)
        kind = "overdue" if due < now else "due_soon"
        text = (
            f"Quá hạn xử lý: {doc.subject[:120]}"
            if kind == "overdue"
            else f"Sắp đến hạn xử lý ({_vn(due)}): {doc.subject[:120]}"
        )
        for uid in doc.pending_user_ids:
            if notify(
                uid,
                kind,
                text,
                link=f"/documents/{doc.pk}",
                dedupe_key=f"{kind}:{doc.pk}:{uid}:{due.isoformat()}",
            ):
                sent[kind] += 1
    sent["escalated"] = _escalate(now)
    log.info("deadlines run at %s: %s", now.isoformat(), sent)
    return sent


def _escalate(now: dt.datetime) -> int:
    count = 0
    specs: dict[tuple[str, int], dict[str, Any]] = {}
    for doc in Document.objects(closed=False, migrated=False, workflow_code__ne=None):
        key = (doc.workflow_code, doc.workflow_version)
        if key not in specs:
            specs[key] = version_spec(*key)
        state = next((s for s in specs[key].get("states") or [] if s["code"] == doc.state), None)
        for i, esc in enumerate((state or {}).get("escalations") or []):
            entered = _aware(doc.state_entered_at or doc.created_at)
            if now < entered + dt.timedelta(hours=float(esc["after_hours"])):
                continue
            users: set[str] = set()
            for rule in esc.get("notify") or []:
                users |= users_for(rule, doc)
            text = esc.get("message") or f"Văn bản chậm xử lý: {doc.subject[:120]}"
            for uid in users:
                key_ = f"escalate:{doc.pk}:{doc.state}:{entered.isoformat()}:{i}:{uid}"
                if notify(
                    uid,
                    "escalated",
                    f"{text}: {doc.subject[:100]}",
                    link=f"/documents/{doc.pk}",
                    dedupe_key=key_,
                ):
                    count += 1
    return count


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _vn(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%H:%M %d/%m/%Y")
