"""Indexing step: the batch's documents go to the search index while the tables load.

The phases leave what they write ``index_status="pending"``. A background feed hands the
pending documents to the index processes, a batch whenever a process is free, between the
phases' batches: during the documents phase a batch of the rows stored so far, afterwards
all of them in subject order (copies of one text together, analysed and inverted once).
Documents that attachment rows still to be read refer to wait for their files. A document
changed after it was read stays pending; the last step indexes what is still pending, in
chunks. Killed midway, the next run indexes what is still pending.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from typing import Any, Protocol

from models.document import Document
from workflows.errors import Conflict
from workflows.legacy_import_run import ImportRun

#: Documents handed to the index at a time, per index process (SEARCH_INDEX_PROCS): the
#: writer cuts them into segments of 5,000 and the step reports progress after each chunk.
INDEX_CHUNK = 10_000
#: Documents a background batch holds (one segment each).
FEED_BATCH = 5_000
#: While rows still come, the feed waits for this many new documents: in subject order the
#: copies of a text among them come together (the same circular received by several units
#: comes in at about the same time), so each batch inverts each text once for several copies.
FEED_WINDOW = 4 * FEED_BATCH

IndexHook = Callable[[list[str], int], object]


class Feed(Protocol):
    """What the step needs of jobs.search.IndexFeed."""

    busy: bool
    written: int

    def add(self, ids: list[str], batch_size: int | None = None) -> None: ...
    def poll(self) -> None: ...
    def close(self) -> int: ...
    def abort(self) -> None: ...


FeedFactory = Callable[..., Feed]


class IndexStep:
    """Index the batch's pending documents, in the background and then to the end."""

    def __init__(
        self, run: ImportRun, index: IndexHook, procs: int = 1, feed: FeedFactory | None = None
    ) -> None:
        self.run = run
        self.index = index
        self.procs = max(1, procs)
        self.feed_factory = feed
        self.feed: Feed | None = None
        self.queue: deque[str] = deque()
        self.queued: set[str] = set()  # every id the feed was given (or will be)
        self.later: set[str] = set()  # ids waiting for their files
        self._refill_at = 0  # documents phase: rows stored before the next pending query
        # Once the documents phase is over, only `more` (and the last step) adds pending
        # documents: one query after each is enough, not one per commit.
        self._settled = False
        self.collection = Document._get_collection()

    def _pending_ids(self) -> list[Any]:
        # One query for the ids (a few MB per 100k documents), in subject order: copies of
        # one text (a circular filed by several units) come together.
        pending = {"import_batch_id": self.run.batch_id, "index_status": "pending"}
        rows = self.collection.find(pending, {"_id": 1, "subject": 1})
        return [r["_id"] for r in sorted(rows, key=lambda r: (r.get("subject") or "", r["_id"]))]

    def start(self, later: Collection[Any] = ()) -> None:
        """Start the background feed: stored documents go to the index as processes free up.

        ``later``: ids of documents that files still to come will change; they wait for
        ``more`` (read now, they would be indexed twice).
        """
        if self.feed_factory is None or self.feed is not None:
            return
        self.later = {str(i) for i in later}
        self.feed = self.feed_factory(self.procs, background=True)
        self.run.idle_tasks.append(self.pump)
        self.pump()

    def more(self) -> None:
        """The files are in: the documents that waited for them may be read now."""
        self.later.clear()
        self._settled = False
        self.pump()

    def _refill(self) -> None:
        """Queue the pending documents not queued yet, in subject order."""
        run = self.run
        rows = run.checkpoints["documents"]
        if run.phase == "documents" and rows < self._refill_at:
            return  # rows still come: wait for a window of them
        if run.phase != "documents":
            if self._settled:
                return
            self._settled = True
        fresh = [str(i) for i in self._pending_ids()]
        fresh = [i for i in fresh if i not in self.queued and i not in self.later]
        if run.phase == "documents" and len(fresh) < FEED_WINDOW:
            self._refill_at = rows + FEED_WINDOW - len(fresh)
            return
        self.queue.extend(fresh)
        self.queued.update(fresh)
        run.indexing["total"] = len(self.queued)

    def pump(self) -> None:
        """Commit finished segments and keep every index process busy (never waits)."""
        feed = self.feed
        if feed is None:
            return
        feed.poll()
        if not self.queue and not feed.busy:
            self._refill()
        while self.queue and not feed.busy:
            batch = [self.queue.popleft() for _ in range(min(FEED_BATCH, len(self.queue)))]
            feed.add(batch, batch_size=FEED_BATCH)
        self.run.indexing["done"] = feed.written

    def abort(self) -> None:
        """Stop the background feed (what it did not commit stays pending)."""
        if self.feed is not None:
            self.feed.abort()
            self.feed = None

    def run_step(self) -> None:
        """Finish the background feed, then index every document still pending."""
        run = self.run
        run.phase = "indexing"
        done = 0
        if self.feed is not None:
            run.save_progress()
            if self.pump in run.idle_tasks:
                run.idle_tasks.remove(self.pump)
            try:
                self.later.clear()
                self._settled = False
                self._refill()
                if self.queue:
                    # The last batches split evenly: no process finishes long before another.
                    size = min(FEED_BATCH, -(-len(self.queue) // self.procs))
                    self.feed.add(list(self.queue), batch_size=size)
                    self.queue.clear()
                done = self.feed.close()
            except BaseException:
                self.abort()
                raise
            self.feed = None
        chunk = INDEX_CHUNK * self.procs
        previous: set[Any] = set()
        while True:
            ids = self._pending_ids()
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
        run.indexing = {"done": done, "total": done}
        run.save_progress()
