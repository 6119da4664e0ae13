import datetime as dt

import time_machine

from jobs.deadlines import run_deadlines
from jobs.scheduler import tick
from models.document import Document
from models.notification import Notification
from workflows import engine


def test_due_soon_and_overdue_reminders_are_sent_once(make_document, users):
    doc = make_document("incoming", "vanthu", issuer="UBND tỉnh")
    doc = engine.transition(
        doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)}
    )
    # The "presented" state has an 8-hour SLA.
    assert doc.due_at is not None
    due = doc.due_at.replace(tzinfo=dt.UTC) if doc.due_at.tzinfo is None else doc.due_at
    leader = str(users["giamdoc"].pk)
    assert run_deadlines((due - dt.timedelta(hours=1)).isoformat())["due_soon"] == 1
    assert run_deadlines((due - dt.timedelta(minutes=30)).isoformat())["due_soon"] == 0
    result = run_deadlines((due + dt.timedelta(minutes=1)).isoformat())
    assert result["overdue"] == 1
    kinds = sorted(n.kind for n in Notification.objects(user_id=leader))
    assert kinds.count("due_soon") == 1 and kinds.count("overdue") == 1
    assert "escalated" in kinds  # the incoming workflow escalates after 8 hours


def test_closed_documents_get_no_reminders(make_document, users):
    doc = make_document("incoming", "vanthu", issuer="UBND tỉnh")
    engine.transition(doc.pk, "return_invalid", users["vanthu"], {"reason": "Sai nơi nhận"})
    stored = Document.objects.get(pk=doc.pk)
    assert stored.closed and stored.due_at is None
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    assert run_deadlines(later) == {"due_soon": 0, "overdue": 0, "escalated": 0}


def test_scheduler_enqueues_each_slot_once(app, run_jobs):
    from jobs import get_queue

    with time_machine.travel(dt.datetime(2026, 11, 21, 8, 0, 5, tzinfo=dt.UTC), tick=False):
        first = tick()
        assert tick() == first
    assert get_queue("notifications").count == len(first)
    assert run_jobs()
