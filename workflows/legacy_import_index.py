"""Indexing step: once the tables are in, each document of the batch is indexed once.

The phases leave what they write ``index_status="pending"`` (the documents phase inserts it,
the attachments phase sets it again with the PDF text). This last step hands the pending
documents of the batch to the search index in chunks of thousands: analysing a document costs
the same either way, but one segment per chunk (instead of one per 500-row batch, merged over
and over) and no second pass for documents whose attachments added text make it several times
cheaper. Killed midway, the next run indexes what is still pending.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.document import Document
from workflows.errors import Conflict
from workflows.legacy_import_run import ImportRun

#: Documents handed to the index at a time, per index process (SEARCH_INDEX_PROCS): the
#: writer cuts them into segments of 5,000 and the step reports progress after each chunk.
INDEX_CHUNK = 10_000

IndexHook = Callable[[list[str], int], object]


class IndexStep:
    """Index the batch's pending documents, chunk by chunk, reporting progress."""

    def __init__(self, run: ImportRun, index: IndexHook, procs: int = 1) -> None:
        self.run = run
        self.index = index
        self.procs = max(1, procs)
        self.collection = Document._get_collection()

    def run_step(self) -> None:
        """Index every pending document of the batch (what a killed run left too)."""
        run = self.run
        run.phase = "indexing"
        pending = {"import_batch_id": run.batch_id, "index_status": "pending"}
        chunk = INDEX_CHUNK * self.procs
        done = 0
        previous: set[Any] = set()
        while True:
            # One query for the ids (a few MB per 100k documents), then chunks of them, in
            # subject order: copies of one text (a circular filed by several units) come
            # together, so the index analyses and inverts that text once per run of copies.
            rows = self.collection.find(pending, {"_id": 1, "subject": 1})
            ids = [r["_id"] for r in sorted(rows, key=lambda r: (r.get("subject") or "", r["_id"]))]
            if not ids:
                break
            if previous.intersection(ids):  # the hook did not mark them: never loop forever
                raise Conflict("Không lập được chỉ mục tìm kiếm cho văn bản chuyển đổi.")
            run.indexing = {"done": done, "total": done + len(ids)}
            run.save_progress()
            for start in range(0, len(ids), chunk):
                part = [str(i) for i in ids[start : start + chunk]]
                self.index(part, self.procs)
                done += len(part)
                run.indexing["done"] = done
                run.save_progress()
            previous = set(ids)
        if run.indexing["total"] == 0:
            run.save_progress()
