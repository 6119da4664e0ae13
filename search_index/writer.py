"""Serialized writes to the archive index: create, bulk index, delete, check and rebuild.

Only one writer works at a time: every write takes Whoosh's file lock (with a timeout) for its
whole duration and commits synchronously. Nothing here buffers writes in a thread (never
Whoosh's asynchronous writer: an RQ work-horse exits with ``os._exit`` and would lose them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Segment
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, FileIndex, clean_files
from whoosh.util import now, random_name
from whoosh.writing import SegmentWriter

from search_index import merge as merge_mod
from search_index import schema as schema_mod
from search_index.document import IndexRecord, PreparedDocument, prepare, version_of
from search_index.errors import IndexBusyError, IndexMissingError, IndexOutdatedError
from search_index.segment import SegmentBuilder

log = logging.getLogger(__name__)

INDEX_NAME = "MAIN"
#: Seconds a writer waits for the index lock before giving up (the job can be retried).
LOCK_TIMEOUT = 60.0
#: Documents per bulk segment (memory grows with it; fewer segments search faster).
BATCH_SIZE = 5000
REBUILD_MARKER = "REBUILD_IN_PROGRESS"

#: Statistics of the last index_documents call in this process (for logs and benchmarks).
STATS: dict[str, float] = {"worker_cpu_s": 0.0}

Status = Literal["missing", "outdated", "rebuilding", "ok"]
Progress = Callable[[int], None]


def index_status(path: str | Path) -> Status:
    """Tell whether the index at ``path`` is missing, outdated, being rebuilt or usable."""
    path = Path(path)
    if not path.is_dir() or not whoosh_index.exists_in(str(path), indexname=INDEX_NAME):
        return "missing"
    if schema_mod.read_version(path) != schema_mod.SCHEMA_VERSION:
        return "outdated"
    if (path / REBUILD_MARKER).exists():
        return "rebuilding"
    return "ok"


def open_index(path: str | Path) -> FileIndex:
    """Open an existing index; raise if it is missing or built with another schema version."""
    status = index_status(path)
    if status == "missing":
        raise IndexMissingError()
    if status == "outdated":
        raise IndexOutdatedError()
    return FileStorage(str(path)).open_index(INDEX_NAME)


def open_or_create(path: str | Path) -> FileIndex:
    """Open the index at ``path``, creating an empty one when there is none."""
    if index_status(path) == "missing":
        return create(path)
    return open_index(path)


def create(path: str | Path) -> FileIndex:
    """Create an empty index (replacing whatever index files are there)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    storage = FileStorage(str(path))
    ix = storage.create_index(schema_mod.build_schema(), indexname=INDEX_NAME)
    schema_mod.write_version(path)
    return ix


def recreate(path: str | Path) -> FileIndex:
    """Wipe the directory and create an empty index with the current schema."""
    path = Path(path)
    if path.exists():
        # Lock through the storage: an outdated TOC may not even unpickle any more.
        with _locked(FileStorage(str(path))):
            for child in path.iterdir():
                if child.name != f"{INDEX_NAME}_WRITELOCK":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            return create(path)
    return create(path)


@contextmanager
def _locked(target: FileIndex | FileStorage, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the index write lock, waiting at most ``timeout`` seconds for it."""
    storage = target.storage if isinstance(target, FileIndex) else target
    lock = storage.lock(f"{INDEX_NAME}_WRITELOCK")
    deadline = now() + timeout
    while not lock.acquire(blocking=False):
        if now() >= deadline:
            raise IndexBusyError()
        time.sleep(0.05)
    try:
        yield
    finally:
        lock.release()


class _Writer(SegmentWriter):
    """A Whoosh segment writer that also commits segments built by SegmentBuilder.

    ``building`` names segments other workers are still writing: Whoosh deletes every
    segment file missing from the new TOC when it commits, and must spare those.
    """

    def __init__(self, ix: FileIndex, building: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(ix, _lk=False, **kwargs)
        # Whoosh destroys its temp directory when a writer finishes; builders in worker
        # processes use the shared one, so this writer gets a private directory.
        self._tempstorage = self.storage.temp_storage(f"{self.indexname}-{random_name(8)}.tmp")
        self.extra_segments: list[W3Segment] = []
        self.building = list(building)

    def _commit_toc(self, segments: list[Any]) -> None:
        toc = TOC(self.schema, segments, self.generation)
        toc.write(self.storage, self.indexname)
        spared = [W3Segment(self.codec, self.indexname, segid=s) for s in self.building]
        clean_files(self.storage, self.indexname, self.generation, segments + spared)

    def commit(self, mergetype: Any = None, optimize: Any = None, merge: Any = None) -> None:
        """Add the built segments, merge small ones (fast merge), write the TOC."""
        self._check_state()
        self._close_segment()  # Whoosh's own (unused) new segment
        segments = [s for s in [*self.segments, *self.extra_segments] if s.doc_count() > 0]
        groups = [segments] if optimize and len(segments) > 1 else merge_mod.plan(segments)
        for group in groups:
            merged = merge_mod.merge_segments(self.storage, self.indexname, self.schema, group)
            gone = {s.segid for s in group}
            segments = [s for s in segments if s.segid not in gone]
            if merged is not None:
                segments.append(merged)
        self._commit_toc(segments)
        self._finish()


def _delete_ids(writer: SegmentWriter, ids: Iterable[str]) -> int:
    """Mark the documents with these ids deleted; return how many were found.

    Looks each id up in every segment's term table (a hash probe) instead of running a Whoosh
    query per id: a bulk batch of 10,000 new ids costs milliseconds.
    """
    if not writer.segments:
        return 0
    count = 0
    with writer.reader() as reader:
        leaves = list(reader.leaf_readers())
        for doc_id in ids:
            term = ("id", doc_id)
            for leaf, offset in leaves:
                if term in leaf:
                    for docnum in leaf.postings("id", doc_id).all_ids():
                        writer.delete_document(offset + docnum)
                        count += 1
    return count


def _commit(
    ix: FileIndex,
    segment: W3Segment | None,
    replace_ids: Iterable[str],
    building: Iterable[str] = (),
    optimize: bool = False,
) -> None:
    writer = _Writer(ix, building)
    try:
        _delete_ids(writer, replace_ids)
        if segment is not None:
            writer.extra_segments.append(segment)
        writer.commit(optimize=optimize)
    except BaseException:
        writer.cancel()
        raise


def _build_segment(
    storage: FileStorage, records: list[IndexRecord], compound: bool, segid: str | None = None
) -> tuple[W3Segment, list[str]]:
    """Analyse records and write them as one segment (runs in a worker process too)."""
    builder = SegmentBuilder(storage, INDEX_NAME, schema_mod.build_schema(), segid=segid)
    try:
        prepared: dict[str, PreparedDocument] = {}
        for record in records:
            doc = prepare(record, builder.terms)
            prepared.pop(doc.id, None)  # the last version of a repeated id wins
            prepared[doc.id] = doc
        builder.add_all(prepared.values())
        return builder.finish(compound=compound), list(prepared)
    except BaseException:
        builder.cancel()
        raise


def _build_in_worker(
    path: str, records: list[IndexRecord], segid: str
) -> tuple[W3Segment, list[str], float]:
    started = time.process_time()
    segment, ids = _build_segment(FileStorage(path), records, False, segid)
    return segment, ids, time.process_time() - started


def _share_texts(batch: list[IndexRecord]) -> list[IndexRecord]:
    """Make equal texts of a batch one object, so pickling sends each of them once.

    Copies of one circular (filed by many units) come in one batch with equal bodies read
    as separate strings; pickle writes an object it has seen as a reference.
    """
    seen: dict[str, str] = {}
    for record in batch:
        if body := record.get("body"):
            record["body"] = seen.setdefault(body, body)
        if attached := record.get("attachment_text"):
            record["attachment_text"] = seen.setdefault(attached, attached)
    return batch


def _batches(records: Iterable[IndexRecord], size: int) -> Iterator[list[IndexRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


#: Niceness of background index workers (os.nice increment).
BACKGROUND_NICE = 10


def _lower_priority(increment: int) -> None:
    """Run this worker process at a lower CPU priority (where the system allows it)."""
    if increment:
        with suppress(OSError):
            os.nice(increment)


class BulkWriter:
    """Write records as segments built in worker processes, while the caller goes on.

    Holds the index lock from ``open`` to ``close``. ``add`` hands every full batch to the
    workers (waiting only when ``procs`` + 1 batches are already in flight, so memory stays
    bounded); ``poll`` commits the segments finished so far, in order, without waiting;
    ``close`` writes what is left and waits for it. ``on_commit(ids)`` follows each commit.
    Without a pool (``procs`` = 1 and not ``background``) batches are built in this process.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        procs: int = 1,
        batch_size: int = BATCH_SIZE,
        timeout: float = LOCK_TIMEOUT,
        background: bool = False,
        on_commit: Callable[[list[str]], object] | None = None,
    ) -> None:
        self.path = str(path)
        self.procs = max(1, procs)
        self.batch_size = max(1, batch_size)
        self.on_commit = on_commit
        self.written = 0
        self.worker_cpu = 0.0
        self._buffer: list[IndexRecord] = []
        self._pending: deque[tuple[str, Any]] = deque()
        self._stack = ExitStack()
        self.ix = open_or_create(path)
        self._stack.enter_context(_locked(self.ix, timeout))
        self._pool = None
        if background or self.procs > 1:
            context = multiprocessing.get_context("forkserver")
            # In the background the caller's own work comes first: the workers take the CPU
            # it leaves (on 2 cores, 3 busy processes would slow the caller by a third).
            nice = (BACKGROUND_NICE,) if background else (0,)
            self._pool = context.Pool(self.procs, initializer=_lower_priority, initargs=nice)
            # Closed, never terminated: terminating while a batch is being sent to a worker
            # can hang forever (CPython's pool); an aborted write waits for its batches.
            self._stack.callback(self._pool.join)
            self._stack.callback(self._pool.close)

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Stop without committing; segments built meanwhile are cleaned up by a later commit."""
        self._stack.close()

    @property
    def busy(self) -> bool:
        """Tell whether every worker has a batch (more would only wait)."""
        return len(self._pending) >= self.procs

    def add(self, records: Iterable[IndexRecord]) -> None:
        """Queue records; every full batch goes to a worker."""
        self._buffer.extend(records)
        while len(self._buffer) >= self.batch_size:
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            self._submit(batch)

    def poll(self) -> None:
        """Commit the segments finished so far, in order, without waiting."""
        while self._pending and self._pending[0][1].ready():
            self._commit_next()

    def close(self) -> int:
        """Write the queued records, wait for every segment, release the lock; return count."""
        try:
            if self._buffer:
                batch, self._buffer = self._buffer, []
                self._submit(batch)
            while self._pending:
                self._commit_next()
        finally:
            self._stack.close()
        return self.written

    def _submit(self, batch: list[IndexRecord]) -> None:
        if self._pool is None:
            segment, ids = _build_segment(self.ix.storage, batch, compound=len(batch) < 100)
            self._committed(segment, ids, ())
            return
        while len(self._pending) > self.procs:
            self._commit_next()
        segid = W3Segment._random_id()
        job = self._pool.apply_async(_build_in_worker, (self.path, _share_texts(batch), segid))
        self._pending.append((segid, job))

    def _commit_next(self) -> None:
        _, job = self._pending.popleft()
        segment, ids, cpu = job.get()
        self.worker_cpu += cpu
        self._committed(segment, ids, [segid for segid, _ in self._pending])

    def _committed(self, segment: W3Segment, ids: list[str], building: Iterable[str]) -> None:
        _commit(self.ix, segment, ids, building=building)
        self.written += len(ids)
        if self.on_commit is not None:
            self.on_commit(ids)


def index_documents(
    path: str | Path,
    records: Iterable[IndexRecord],
    *,
    batch_size: int = BATCH_SIZE,
    procs: int = 1,
    timeout: float = LOCK_TIMEOUT,
    progress: Progress | None = None,
) -> int:
    """Add or replace records in batches (one segment per batch); return how many were written.

    With ``procs`` > 1, batches are analysed and written by that many worker processes while
    this process holds the lock and commits each finished segment.
    """
    STATS["worker_cpu_s"] = 0.0
    done = 0

    def on_commit(ids: list[str]) -> None:
        nonlocal done
        done += len(ids)
        if progress is not None:
            progress(done)

    with BulkWriter(
        path, procs=procs, batch_size=batch_size, timeout=timeout, on_commit=on_commit
    ) as writer:
        for batch in _batches(records, batch_size):
            writer.add(batch)
    STATS["worker_cpu_s"] = writer.worker_cpu
    log.info(
        "search index: wrote %d records to %s (worker cpu %.1f s)",
        writer.written,
        path,
        writer.worker_cpu,
    )
    return writer.written


def delete_documents(path: str | Path, ids: Iterable[str], *, timeout: float = LOCK_TIMEOUT) -> int:
    """Remove records from the index; return how many index documents were deleted."""
    ix = open_index(path)
    with _locked(ix, timeout):
        writer = _Writer(ix)
        try:
            count = _delete_ids(writer, ids)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
    return count


def optimize(path: str | Path, *, timeout: float = LOCK_TIMEOUT) -> int:
    """Merge every segment into one (drops deleted documents); return the segment count."""
    ix = open_index(path)
    with _locked(ix, timeout):
        _commit(ix, None, (), optimize=True)
    return len(open_index(path)._segments())


def indexed_versions(path: str | Path) -> dict[str, str]:
    """Return ``{record id: indexed version}`` for every live document in the index."""
    ix = open_index(path)
    versions: dict[str, str] = {}
    with ix.reader() as reader:
        if reader.doc_count_all() == 0:
            return versions
        ids = reader.column_reader("doc_id")
        vers = reader.column_reader("version")
        for docnum in reader.all_doc_ids():
            versions[ids[docnum]] = vers[docnum]
    return versions


@dataclass
class Drift:
    """What differs between the records that should be indexed and the index."""

    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Tell whether the index matches the records exactly."""
        return not (self.missing or self.stale or self.extra)


def check(path: str | Path, current: Mapping[str, str]) -> Drift:
    """Compare ``{id: version_of(updated_at)}`` of the records with what the index holds."""
    indexed = indexed_versions(path)
    drift = Drift()
    for doc_id, version in current.items():
        found = indexed.get(doc_id)
        if found is None:
            drift.missing.append(doc_id)
        elif found != version:
            drift.stale.append(doc_id)
    drift.extra = [doc_id for doc_id in indexed if doc_id not in current]
    return drift


def rebuild(
    path: str | Path,
    records: Iterable[IndexRecord],
    *,
    restart: bool = False,
    batch_size: int = BATCH_SIZE,
    procs: int = 1,
    progress: Progress | None = None,
) -> int:
    """Rebuild the index from all records, resuming an interrupted rebuild unless ``restart``.

    Records already indexed at their current version are skipped, so running it again after
    a crash continues where it stopped. Index documents whose record no longer exists are
    removed at the end.
    """
    path = Path(path)
    if restart or index_status(path) in ("missing", "outdated"):
        recreate(path)
    (path / REBUILD_MARKER).write_text("1\n", encoding="ascii")
    done = indexed_versions(path)
    seen: set[str] = set()

    def todo() -> Iterator[IndexRecord]:
        for record in records:
            doc_id = str(record["id"])
            seen.add(doc_id)
            if done.get(doc_id) != version_of(record.get("updated_at")):
                yield record

    written = index_documents(path, todo(), batch_size=batch_size, procs=procs, progress=progress)
    extra = [doc_id for doc_id in done if doc_id not in seen]
    if extra:
        delete_documents(path, extra)
    (path / REBUILD_MARKER).unlink(missing_ok=True)
    return written
