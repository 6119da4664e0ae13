"""Retention periods and transfer deadlines, computed and stored with time frozen."""

import datetime as dt

import pytest
import time_machine
from mongoengine import ValidationError

from models.case_file import CaseFile
from models.retention import (
    RetentionPeriod,
    requires_transfer,
    retention_ends,
    retention_label,
    transfer_deadline,
    warning_starts,
)
from tests.workflows.test_case_file import migrated_document, open_adhoc
from workflows import case_file as cf

VN = dt.timezone(dt.timedelta(hours=7))


@pytest.mark.parametrize(
    ("years", "permanent", "due"),
    [
        (None, True, True),
        (70, False, True),
        (5, False, True),
        (4, False, False),
        (2, False, False),
    ],
)
def test_files_kept_five_years_or_more_go_to_the_archive(years, permanent, due):
    assert requires_transfer(years, permanent) is due
    deadline = transfer_deadline(dt.date(2026, 3, 15), years, permanent)
    assert deadline == (dt.date(2027, 3, 15) if due else None)


def test_deadline_dates():
    assert transfer_deadline(dt.date(2028, 2, 29), 10, False) == dt.date(2029, 2, 28)
    assert warning_starts(dt.date(2027, 3, 15)) == dt.date(2027, 2, 13)
    # Retention counts from 1 January of the year after the work ended.
    assert retention_ends(dt.date(2026, 6, 30), 5, False) == dt.date(2032, 1, 1)
    assert retention_ends(dt.date(2026, 12, 31), 10, False) == dt.date(2037, 1, 1)
    assert retention_ends(dt.date(2026, 6, 30), None, True) is None
    assert retention_label(None, True) == "Vĩnh viễn"
    assert retention_label(20, False) == "20 năm"


def test_the_table_is_seeded_and_checked():
    permanent = RetentionPeriod.objects.get(code="01.01")
    assert permanent.permanent and permanent.years is None and permanent.label == "Vĩnh viễn"
    assert RetentionPeriod.objects.get(code="09.04").label == "2 năm"
    assert permanent.group == "01. Tài liệu tổng hợp"
    with pytest.raises(ValidationError, match="số năm bảo quản"):
        RetentionPeriod(code="99.01", group="99. Khác", title="Không thời hạn").save()
    row = RetentionPeriod(code="99.02", group="99. Khác", title="x", years=5, permanent=True)
    row.save()
    assert row.years is None


def test_closing_stores_the_deadlines_in_vietnam_time(users, units):
    doc = migrated_document(units, issued_on=dt.date(2025, 12, 20), pages=3)
    case_file = open_adhoc(users["chuyenvien"], retention="07.02")  # 15 years
    cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    # 17:30 UTC on the 31st of December is already 1 January in Vietnam.
    with time_machine.travel(dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC), tick=False):
        closed = cf.close_case_file(users["chuyenvien"], case_file.pk)
    assert closed.closed_on == dt.date(2027, 1, 1)
    assert closed.transfer_due_on == dt.date(2028, 1, 1)
    assert closed.retention_ends_on == dt.date(2043, 1, 1)
    assert (closed.start_on, closed.end_on) == (dt.date(2025, 12, 20), dt.date(2025, 12, 20))
    assert (closed.document_count, closed.page_count) == (1, 3)


def test_a_short_retention_file_has_no_transfer_deadline(users, units):
    case_file = open_adhoc(users["chuyenvien"], retention="09.04")  # 2 years
    cf.attach_document(users["chuyenvien"], case_file.pk, migrated_document(units).pk)
    with time_machine.travel(dt.datetime(2026, 3, 15, 3, tzinfo=dt.UTC), tick=False):
        closed = cf.close_case_file(users["chuyenvien"], case_file.pk)
    assert closed.transfer_due_on is None and closed.transfer_state == "not_required"
    assert closed.retention_ends_on == dt.date(2029, 1, 1)


def test_queries_for_the_records_manager(users, units):
    files = {}
    for code, retention in (("A.1", "01.01"), ("B.1", "05.03"), ("C.1", "09.04")):
        case_file = open_adhoc(users["chuyenvien"], code=code, retention=retention)
        doc = migrated_document(units, legacy_id=f"{code}-VBĐT", notation=f"{code}/BC")
        cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
        with time_machine.travel(dt.datetime(2026, 3, 15, 3, tzinfo=dt.UTC), tick=False):
            files[code] = cf.close_case_file(users["chuyenvien"], case_file.pk)

    def codes(qs):
        return sorted(c.code for c in qs)

    assert codes(CaseFile.objects.awaiting_transfer()) == ["A.1", "B.1"]
    assert codes(CaseFile.objects.transfer_warned(dt.date(2027, 2, 12))) == []
    assert codes(CaseFile.objects.transfer_warned(dt.date(2027, 2, 13))) == ["A.1", "B.1"]
    assert codes(CaseFile.objects.transfer_overdue(dt.date(2027, 3, 15))) == []
    assert codes(CaseFile.objects.transfer_overdue(dt.date(2027, 3, 16))) == ["A.1", "B.1"]
    # Destruction proposals: retention over, never a permanent file.
    assert codes(CaseFile.objects.retention_ended(dt.date(2028, 12, 31))) == []
    assert codes(CaseFile.objects.retention_ended(dt.date(2029, 1, 1))) == ["C.1"]
    assert codes(CaseFile.objects.retention_ended(dt.date(2037, 1, 1))) == ["B.1", "C.1"]
    assert codes(CaseFile.objects.retention_ended(dt.date(2999, 1, 1))) == ["B.1", "C.1"]


def test_visibility(users, units):
    mine = open_adhoc(users["chuyenvien"])
    assert list(CaseFile.objects.visible_to(users["phophong"])) == [mine]  # same unit
    assert list(CaseFile.objects.visible_to(users["cv.khtc"])) == []
    assert list(CaseFile.objects.visible_to(users["luutru"])) == [mine]  # archive right
    assert mine.full_code() == f"000.00.19.H19.{mine.year}.15.QLTM"
