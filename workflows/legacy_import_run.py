"""The state of one import run: its lease on the batch, counters, problems, checkpoints.

Every phase writes its data first and then calls ``commit``: problems of the committed rows
are inserted and the batch's checkpoint, counters and progress move in one update guarded by
the lease. A run killed between the two leaves data past the checkpoint; the next run rolls
the problems back to the checkpoint and redoes those rows, whose writes are idempotent.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne

from models.audit import utcnow
from models.legacy_import import PHASES, ImportBatch, ImportProblem, empty_counts
from workflows.errors import Conflict
from workflows.legacy import Row

log = logging.getLogger(__name__)

LEASE_STALE = dt.timedelta(minutes=10)  # a run silent this long is taken for dead
INFO = "info"  # severity of entries that are neither rejections nor warnings

ProgressCallback = Callable[[dict[str, Any]], None]


def update_each(collection: Any, updates: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
    """Apply (filter, update) pairs with one bulk write; return how many matched.

    mongomock cannot take pymongo 4's UpdateOne in bulk_write: there it applies them one by
    one (the in-memory database has no round trips to save anyway).
    """
    if not updates:
        return 0
    if type(collection).__module__.startswith("mongomock"):
        return sum(collection.update_one(f, u).matched_count for f, u in updates)
    result = collection.bulk_write([UpdateOne(f, u) for f, u in updates], ordered=False)
    return int(result.matched_count)


class LeaseLost(Conflict):
    """Another run took this batch over (the previous one was taken for dead)."""

    code = "import_lease_lost"
    message = "Lô chuyển đổi đang được một tiến trình khác chạy tiếp."


def acquire(batch_id: str, *, force: bool = False) -> tuple[ImportBatch, str]:
    """Take the batch for this run; refuse when another live run holds it."""
    lease = uuid.uuid4().hex
    now = utcnow()
    stale = now - LEASE_STALE
    base = ImportBatch.objects(pk=batch_id)
    if not force:
        base = base.filter(
            __raw__={
                "$or": [
                    {"status": {"$in": ["queued", "failed"]}},
                    {"status": "running", "heartbeat_at": {"$lt": stale}},
                ]
            }
        )
    else:
        base = base.filter(status__in=["queued", "failed", "running"])
    batch = base.modify(
        new=True,
        set__status="running",
        set__lease=lease,
        set__heartbeat_at=now,
        set__error=None,
        inc__attempts=1,
    )
    if batch is None:
        current = ImportBatch.objects(pk=batch_id).first()
        if current is None:
            raise Conflict("Không tìm thấy lô chuyển đổi.", code="not_found")
        if current.status == "running":
            raise Conflict("Lô chuyển đổi đang chạy; chờ nó xong hoặc dừng hẳn rồi chạy tiếp.")
        raise Conflict(f"Lô chuyển đổi đang ở trạng thái '{current.status_label}'.")
    if batch.started_at is None:
        ImportBatch.objects(pk=batch_id, lease=lease).update_one(set__started_at=now)
        batch.started_at = now
    return batch, lease


class ImportRun:
    """Counters and checkpoints of the run that holds ``lease`` on a batch."""

    PROBLEM_FLUSH = 5000  # commit early when this many problems are waiting

    def __init__(
        self, batch: ImportBatch, lease: str, progress: ProgressCallback | None = None
    ) -> None:
        self.batch = batch
        self.batch_id = str(batch.pk)
        self.lease = lease
        self.progress_callback = progress
        self.counts: dict[str, dict[str, int]] = empty_counts()
        for table, values in (batch.counts or {}).items():
            self.counts.setdefault(table, {}).update(values)
        self.checkpoints: dict[str, int] = {p: 0 for p in PHASES}
        self.checkpoints.update({k: int(v) for k, v in (batch.checkpoints or {}).items()})
        self.totals: dict[str, int] = dict(batch.totals or {})
        self.files_bytes = batch.files_bytes or 0
        self.phase = batch.phase or PHASES[0]
        self.indexing = {"done": 0, "total": 0}  # documents handed to the search index
        #: Work done between batches, after each commit (the background search index feed).
        self.idle_tasks: list[Callable[[], None]] = []
        self.pending: list[dict[str, Any]] = []
        self.problem_count = 0
        self._clock = time.monotonic()
        self._rows_at_start = self.rows_done()
        self._last_beat = self._clock

    # Problems --------------------------------------------------------------------------

    def problem(
        self,
        table: str,
        row: int | None,
        legacy_id: str | None,
        kind: str,
        reason: str,
        severity: str = "warning",
    ) -> None:
        """Queue one report entry; it is written with the next commit."""
        self.pending.append(
            {
                "batch_id": self.batch_id,
                "table": table,
                "row": row,
                "legacy_id": legacy_id,
                "kind": kind,
                "reason": reason,
                "severity": severity,
            }
        )

    def row_problems(self, table: str, row: Row, *, only_warnings: bool = False) -> None:
        """Queue every problem the reader found on a row (or only its warnings)."""
        for entry in row.report():
            if only_warnings and entry["severity"] != "warning":
                continue
            self.problem(table, entry["row"], entry["legacy_id"], entry["kind"],
                         entry["reason"], entry["severity"])  # fmt: skip

    def rejected(self, table: str, row: Row) -> bool:
        """Count and report a row the reader rejected; return True if it was."""
        if row.rejected:
            self.count(table, "rejected")
            self.row_problems(table, row)
        return row.rejected

    def count(self, table: str, outcome: str, n: int = 1) -> None:
        """Add ``n`` records to an outcome (and to the table's total)."""
        self.counts[table][outcome] = self.counts[table].get(outcome, 0) + n
        self.counts[table]["total"] += n

    @property
    def must_flush(self) -> bool:
        """Tell whether enough problems wait to warrant a commit on their own."""
        return len(self.pending) >= self.PROBLEM_FLUSH

    # Resuming --------------------------------------------------------------------------

    def roll_back_problems(self) -> None:
        """Forget problems written past the checkpoints (their rows will be redone)."""
        for table in PHASES:
            ImportProblem.objects(
                batch_id=self.batch_id, table=table, row__gt=self.checkpoints[table]
            ).delete()
        self.problem_count = ImportProblem.objects(batch_id=self.batch_id).count()

    # Committing ------------------------------------------------------------------------

    def commit(self, table: str, row: int, *, next_phase: str | None = None) -> None:
        """Write queued problems, then move the checkpoint of ``table`` to ``row``."""
        if self.pending:
            ImportProblem._get_collection().insert_many(self.pending, ordered=True)
            self.problem_count += len(self.pending)
            self.pending = []
        self.checkpoints[table] = row
        if next_phase is not None:
            self.phase = next_phase
        now = utcnow()
        updated = ImportBatch.objects(pk=self.batch_id, lease=self.lease).update_one(
            set__checkpoints=self.checkpoints,
            set__counts=self.counts,
            set__phase=self.phase,
            set__problem_count=self.problem_count,
            set__files_bytes=self.files_bytes,
            set__totals=self.totals,
            set__progress=self.progress(),
            set__heartbeat_at=now,
        )
        if not updated:
            raise LeaseLost()
        self._last_beat = time.monotonic()
        for task in list(self.idle_tasks):
            task()
        self.report_progress()

    def save_progress(self) -> None:
        """Store phase and progress between commits (the indexing step has no checkpoint)."""
        if not ImportBatch.objects(pk=self.batch_id, lease=self.lease).update_one(
            set__phase=self.phase, set__progress=self.progress(), set__heartbeat_at=utcnow()
        ):
            raise LeaseLost()
        self._last_beat = time.monotonic()
        self.report_progress()

    def heartbeat(self) -> None:
        """Tell watchers the run is alive during long work between commits."""
        if time.monotonic() - self._last_beat < 30:
            return
        if not ImportBatch.objects(pk=self.batch_id, lease=self.lease).update_one(
            set__heartbeat_at=utcnow()
        ):
            raise LeaseLost()
        self._last_beat = time.monotonic()

    def finish(self, updates: dict[str, Any]) -> ImportBatch:
        """Record the end of the run (done or failed) and release the lease."""
        elapsed = round(time.monotonic() - self._clock, 3)
        fields = {f"set__{k}": v for k, v in updates.items()}
        updated = ImportBatch.objects(pk=self.batch_id, lease=self.lease).update_one(
            inc__active_seconds=elapsed, set__lease=None, set__heartbeat_at=utcnow(), **fields
        )
        if not updated:
            raise LeaseLost()
        batch: ImportBatch = ImportBatch.objects.get(pk=self.batch_id)
        return batch

    # Progress --------------------------------------------------------------------------

    def rows_done(self) -> int:
        """Return rows committed over every table."""
        return sum(self.checkpoints.get(p, 0) for p in PHASES)

    def progress(self) -> dict[str, Any]:
        """Return rows done/total, files, rate and ETA (rows per second of this attempt)."""
        done = self.rows_done()
        total = max(done, sum(self.totals.get(p, 0) for p in PHASES))
        elapsed = max(time.monotonic() - self._clock, 1e-6)
        rate = (done - self._rows_at_start) / elapsed
        att = self.counts["attachments"]
        return {
            "phase": self.phase,
            "done": done,
            "total": total,
            "documents": {"done": self.checkpoints["documents"],
                          "total": max(self.totals.get("documents", 0),
                                       self.checkpoints["documents"])},
            "files": {"done": att["stored"] + att["flawed"] + att["missing"],
                      "total": self.totals.get("attachments", 0), "bytes": self.files_bytes},
            "history": {"done": self.checkpoints["history"],
                        "total": self.totals.get("history", 0)},
            "indexing": dict(self.indexing),
            "rate": round(rate, 1),
            "eta_seconds": round((total - done) / rate) if rate > 0 else None,
            "problems": self.problem_count,
        }  # fmt: skip

    def report_progress(self) -> None:
        """Hand the progress to the callback (the job's meta, a CLI progress bar)."""
        if self.progress_callback is not None:
            self.progress_callback(self.progress())

    def counts_snapshot(self) -> dict[str, dict[str, int]]:
        """Return a copy of the counters."""
        return copy.deepcopy(self.counts)


def is_stalled(batch: ImportBatch) -> bool:
    """Tell whether a running batch stopped reporting (its process died)."""
    if batch.status != "running" or batch.heartbeat_at is None:
        return False
    beat = batch.heartbeat_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=dt.UTC)
    return beat < utcnow() - LEASE_STALE
