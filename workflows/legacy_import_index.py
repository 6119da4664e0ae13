"""Indexing step: the batch's documents go to the search index while files and history load.

The phases leave what they write ``index_status="pending"``. Once the documents phase is
done, a background feed hands the pending documents to the index processes in subject order
(copies of one text together, analysed and inverted once), a batch whenever a process is
free, between the attachment and history batches. A document given an attachment's text
after it was read changes, so the index leaves it pending; the last step indexes what is
still pending, in chunks. Killed midway, the next run indexes what is still pending.
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
        self.collection = Document._get_collection()

    def _pending_ids(self) -> list[Any]:
        # One query for the ids (a few MB per 100k documents), in subject order: copies of
        # one text (a circular filed by several units) come together.
        pending = {"import_batch_id": self.run.batch_id, "index_status": "pending"}
        rows = self.collection.find(pending, {"_id": 1, "subject": 1})
        return [r["_id"] for r in sorted(rows, key=lambda r: (r.get("subject") or "", r["_id"]))]

    def start(self, later: Collection[Any] = ()) -> None:
        """Start indexing the documents stored so far, a batch whenever a process is free.

        ``later``: ids of documents that files still to come will change; they wait for
        ``more`` (read now, they would be indexed twice).
        """
        if self.feed_factory is None or self.feed is not None:
            return
        self.queue = deque(str(i) for i in self._pending_ids() if i not in later)
        self.queued.update(self.queue)
        if not self.queue:
            return
        self.feed = self.feed_factory(self.procs, background=True)
        self.run.indexing = {"done": 0, "total": len(self.queue)}
        self.run.idle_tasks.append(self.pump)
        self.pump()

    def more(self) -> None:
        """Queue the pending documents not queued yet (those whose files are now in)."""
        if self.feed is None:
            return
        fresh = [str(i) for i in self._pending_ids() if str(i) not in self.queued]
        self.queue.extend(fresh)
        self.queued.update(fresh)
        self.run.indexing["total"] += len(fresh)

    def pump(self) -> None:
        """Commit finished segments and keep every index process busy (never waits)."""
        feed = self.feed
        if feed is None:
            return
        feed.poll()
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
                if self.queue:
                    self.feed.add(list(self.queue), batch_size=FEED_BATCH)
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
