"""Periodic archive work: warn owners before a case file's transfer deadline, and after it."""

from __future__ import annotations

import datetime as dt
import logging

from models.audit import utcnow
from models.case_file import CaseFile
from models.retention import WARN_DAYS
from models.user import User
from workflows.actions import VN_TZ
from workflows.notification import notify

log = logging.getLogger(__name__)


def _recipients(case_file: CaseFile) -> set[str]:
    """The owner; for a file owned by a unit only, the unit's heads."""
    if case_file.owner_user is not None and case_file.owner_user.active:
        return {str(case_file.owner_user.pk)}
    if case_file.owner_unit is not None:
        return {str(u.pk) for u in User.objects.heads_of(case_file.owner_unit)}
    return set()


def run_archive_deadlines(now_iso: str | None = None) -> dict[str, int]:
    """Warn owners 30 days before a transfer deadline and once it has passed; each once."""
    now = dt.datetime.fromisoformat(now_iso) if now_iso else utcnow()
    today = now.astimezone(VN_TZ).date()
    sent = {"due_soon": 0, "overdue": 0}
    for case_file in CaseFile.objects.transfer_warned(today):
        due = case_file.transfer_due_on
        kind = "overdue" if due < today else "due_soon"
        text = (
            f"Hồ sơ {case_file.code} đã quá hạn nộp lưu ({due:%d/%m/%Y}): {case_file.title[:120]}"
            if kind == "overdue"
            else f"Hồ sơ {case_file.code} cần nộp lưu trước ngày {due:%d/%m/%Y} "
            f"(còn {(due - today).days} ngày): {case_file.title[:120]}"
        )
        for uid in _recipients(case_file):
            if notify(
                uid,
                f"archive_{kind}",
                text,
                link=f"/case-files/{case_file.pk}",
                dedupe_key=f"archive_{kind}:{case_file.pk}:{due.isoformat()}:{uid}",
            ):
                sent[kind] += 1
    log.info("archive deadlines run at %s (warn %d days ahead): %s", today, WARN_DAYS, sent)
    return sent
