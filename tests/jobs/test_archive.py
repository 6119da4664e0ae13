"""The periodic archive job: owners are warned 30 days before the transfer deadline, once."""

import datetime as dt

import time_machine

from jobs.archive import run_archive_deadlines
from jobs.scheduler import tick
from models.notification import Notification
from tests.workflows.test_case_file import migrated_document, open_adhoc
from workflows import case_file as cf


def _closed(users, units, code="15.QLTM", retention="07.02"):
    case_file = open_adhoc(users["chuyenvien"], code=code, retention=retention)
    doc = migrated_document(units, legacy_id=f"{code}-VBĐT")
    cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    with time_machine.travel(dt.datetime(2026, 3, 15, 3, tzinfo=dt.UTC), tick=False):
        return cf.close_case_file(users["chuyenvien"], case_file.pk)


def _at(day, hour_vn=8):
    """The ISO time of `hour_vn` o'clock in Vietnam on `day`."""
    vn = dt.timezone(dt.timedelta(hours=7))
    return dt.datetime.combine(day, dt.time(hour_vn), tzinfo=vn).isoformat()


def test_owner_is_warned_once_from_thirty_days_before(users, units):
    case_file = _closed(users, units)
    assert case_file.transfer_due_on == dt.date(2027, 3, 15)
    _closed(users, units, code="16.QLTM", retention="09.04")  # 2 years: never transferred
    owner = str(users["chuyenvien"].pk)

    assert run_archive_deadlines(_at(dt.date(2027, 2, 12))) == {"due_soon": 0, "overdue": 0}
    assert run_archive_deadlines(_at(dt.date(2027, 2, 13))) == {"due_soon": 1, "overdue": 0}
    assert run_archive_deadlines(_at(dt.date(2027, 2, 20))) == {"due_soon": 0, "overdue": 0}
    (note,) = Notification.objects(user_id=owner)
    assert note.kind == "archive_due_soon"
    assert note.text.startswith("Hồ sơ 15.QLTM cần nộp lưu trước ngày 15/03/2027 (còn 30 ngày)")
    assert note.link == f"/case-files/{case_file.pk}"

    # On the deadline day it is still due; the day after it is overdue, said once.
    assert run_archive_deadlines(_at(dt.date(2027, 3, 15))) == {"due_soon": 0, "overdue": 0}
    assert run_archive_deadlines(_at(dt.date(2027, 3, 16))) == {"due_soon": 0, "overdue": 1}
    assert run_archive_deadlines(_at(dt.date(2027, 4, 1))) == {"due_soon": 0, "overdue": 0}
    kinds = sorted(n.kind for n in Notification.objects(user_id=owner))
    assert kinds == ["archive_due_soon", "archive_overdue"]


def test_transferred_files_are_not_warned(users, units):
    case_file = _closed(users, units)
    cf.transfer_case_files(users["luutru"], [case_file.pk])
    Notification.objects.delete()
    assert run_archive_deadlines(_at(dt.date(2027, 3, 16))) == {"due_soon": 0, "overdue": 0}


def test_a_unit_file_warns_the_unit_heads(users, units):
    case_file = _closed(users, units)
    case_file.update(unset__owner_user=True)
    run_archive_deadlines(_at(dt.date(2027, 3, 1)))
    assert [n.user_id for n in Notification.objects] == [str(users["truongphong"].pk)]


def test_the_scheduler_runs_the_job(app, users, units, run_jobs):
    _closed(users, units)
    with time_machine.travel(dt.datetime(2027, 3, 1, 1, tzinfo=dt.UTC), tick=False):
        ids = tick()
        assert any(i.startswith("periodic-archive-") for i in ids)
        run_jobs(("notifications",))
    assert Notification.objects(kind="archive_due_soon").count() == 1
