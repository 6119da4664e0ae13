"""Attachments phase: stream each file once into GridFS (hash, flags, PDF text on the way).

PDF text is extracted by a worker process (legacy.files.TextWorker) while the next files of
the batch stream in; a batch's files are closed and attached once their text is in.

An attachment is keyed by (legacy id, path): the file is pushed into its document only if
the document holds no file with that path yet, so a resumed run never attaches twice. GridFS
ids derive from (batch, row): what a run killed before its push wrote, even the chunks of a
file it never closed, is one id range, found and removed when the run resumes.
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
from collections.abc import Callable
from typing import Any

import filetype
import gridfs
from bson import ObjectId
from mongoengine.connection import get_db

from models.audit import utcnow
from models.document import Document
from models.legacy_import import LegacyFile, file_id_range, legacy_file_id, legacy_object_id
from workflows import storage
from workflows.errors import Conflict
from workflows.legacy import REJECT, WARNING, AttachmentRow, ExportSource, FileCheck, Mapping
from workflows.legacy import inspect_attachment as _inspect
from workflows.legacy.files import MISSING, OK, TextWorker
from workflows.legacy_import_run import ImportRun, update_each

TABLE = "attachments"
BATCH_ROWS = 100
BATCH_BYTES = 256 * 1024 * 1024
# Reader statuses -> the flags StoredFile uses everywhere (storage.store_upload's vocabulary).
FLAG_NAMES = {"damaged_pdf": "damaged", "encrypted_pdf": "encrypted"}


def inspect_attachment(source: ExportSource, row: AttachmentRow, mapping: Mapping,
                       sink: Callable[[bytes], object] | None = None,
                       texts: TextWorker | None = None) -> FileCheck:  # fmt: skip
    """Read one attachment through the reader's checks (a seam the tests can wrap).

    With ``texts`` a PDF's text comes later: call ``settle()`` on the check before using it.
    """
    return _inspect(
        source,
        row.file,
        expected_size=row.size,
        expected_sha256=row.sha256,
        files_dir=mapping.files_dir,
        sink=sink,
        texts=texts,
    )


def sniff_mime(head: bytes, filename: str) -> str:
    """Return a file's MIME type from its first bytes, else from its name."""
    if b"%PDF-" in head[:1024]:
        return storage.PDF
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or storage.UNKNOWN


class GridSink:
    """A GridFS file opened on the first chunk, so a missing file writes nothing."""

    def __init__(
        self,
        fs: gridfs.GridFS,
        file_id: ObjectId,
        filename: str,
        metadata: dict[str, Any],
        beat: Callable[[], None],
    ) -> None:
        self.fs = fs
        self.file_id = file_id
        self.filename = filename
        self.metadata = metadata
        self.beat = beat
        self.grid: Any = None
        self.mime = storage.UNKNOWN
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.grid is None:
            self._open(chunk)
        self.grid.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.size % (64 << 20) < len(chunk):
            self.beat()

    def _open(self, head: bytes) -> None:
        self.mime = sniff_mime(head, self.filename)
        self.grid = self.fs.new_file(
            _id=self.file_id, filename=self.filename, metadata=self.metadata
        )

    def close(self, flags: list[str]) -> ObjectId:
        """Finish the file (an empty one too: its emptiness is evidence); return its id."""
        if self.grid is None:
            self._open(b"")
        self.grid.metadata = {**self.metadata, "mime": self.mime, "flags": flags,
                              "sha256": self.digest.hexdigest()}  # fmt: skip
        self.grid.close()
        return ObjectId(self.grid._id)

    def abort(self) -> None:
        if self.grid is not None:
            self.grid.abort()


def find_targets(legacy_ids: list[str], projection: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Return legacy id -> stored document (by the derived id, else by the legacy id field)."""
    collection = Document._get_collection()
    wanted = list(dict.fromkeys(legacy_ids))
    projection = {**projection, "legacy_id": 1, "import_batch_id": 1}
    found: dict[str, dict[str, Any]] = {}
    oids = [legacy_object_id(i) for i in wanted]
    for raw in collection.find({"_id": {"$in": oids}}, projection):
        found[raw["legacy_id"]] = raw
    rest = [i for i in wanted if i not in found]
    if rest:
        for raw in collection.find({"legacy_id": {"$in": rest}}, projection):
            found[raw["legacy_id"]] = raw
    return found


def not_imported(run: ImportRun, table: str, row_number: int, legacy_id: str,
                 target: dict[str, Any] | None) -> bool:  # fmt: skip
    """Account for a row whose document is not this batch's; return True if so."""
    if target is None:
        run.count(table, "rejected")
        run.problem(table, row_number, legacy_id, "document_not_imported",
                    f"Không có văn bản số hiệu cũ '{legacy_id}' được nhập trong lô này (văn bản "
                    "bị loại, trùng hoặc không có trong bản xuất).", REJECT)  # fmt: skip
        return True
    if target.get("import_batch_id") != run.batch_id:
        # Counted only: the document's own row already says "already imported".
        run.count(table, "already_imported")
        return True
    return False


class AttachmentPhase:
    """Stream attachments.csv and its files into GridFS from the run's checkpoint."""

    def __init__(self, run: ImportRun, source: ExportSource, mapping: Mapping) -> None:
        self.run = run
        self.source = source
        self.mapping = mapping
        self.collection = Document._get_collection()
        self.texts: TextWorker | None = None  # during run_phase
        self.fs = gridfs.GridFS(get_db())  # one for the phase (~0.2 ms to make one)

    def run_phase(self) -> None:
        from workflows.legacy import read_attachments

        start = self.run.checkpoints[TABLE]
        self.remove_orphans(start)
        reader = read_attachments(self.source, self.mapping, start_after=start)
        pending: list[AttachmentRow] = []
        size = 0
        last = start
        with TextWorker() as self.texts:
            for row in reader:
                last = row.row
                if not self.run.rejected(TABLE, row):
                    pending.append(row)
                    size += row.size or 0
                if len(pending) >= BATCH_ROWS or size >= BATCH_BYTES or self.run.must_flush:
                    self._flush(pending, last)
                    pending, size = [], 0
            self._flush(pending, max(last, reader.rows_read), next_phase="history")

    def remove_orphans(self, start: int) -> None:
        """Delete what a killed run wrote to GridFS past the checkpoint but never attached."""
        db = get_db()
        id_range = file_id_range(self.run.batch_id, start + 1)
        ids = set(db["fs.files"].distinct("_id", {"_id": id_range}))
        ids |= set(db["fs.chunks"].distinct("files_id", {"files_id": id_range}))
        for file_id in ids:
            meta = (db["fs.files"].find_one({"_id": file_id}, {"metadata": 1}) or {}).get(
                "metadata"
            ) or {}
            holder = meta.get("legacy_id") and self.collection.find_one(
                {"_id": legacy_object_id(meta["legacy_id"]), "attachments.file_id": file_id},
                {"_id": 1},
            )
            if not holder:
                storage.delete_file(file_id)

    def _flush(
        self, rows: list[AttachmentRow], last_row: int, next_phase: str | None = None
    ) -> None:
        run = self.run
        projection = {"attachments.legacy_key": 1, "attachments.legacy_row": 1}
        targets = find_targets([r.legacy_id or "" for r in rows], projection)
        keys: dict[ObjectId, dict[str, int]] = {}
        for doc in targets.values():
            attached = doc.get("attachments") or []
            keys[doc["_id"]] = {a["legacy_key"]: a.get("legacy_row") for a in attached
                                if a.get("legacy_key")}  # fmt: skip
        # Files written here and not attached if the run dies are removed on resume. Each
        # file is streamed while the text worker reads the PDFs before it; the second pass
        # waits for their text, closes the files and accounts for the rows in order.
        started: list[tuple[AttachmentRow, ObjectId, FileCheck, GridSink | None]] = []
        try:
            for row in rows:
                legacy_id = row.legacy_id or ""
                target = targets.get(legacy_id)
                if not_imported(run, TABLE, row.row, legacy_id, target):
                    continue
                assert target is not None
                doc_id = target["_id"]
                key = row.file.casefold()
                prior = keys[doc_id].get(key)
                if prior is not None and prior != row.row:
                    run.count(TABLE, "duplicates")
                    run.problem(TABLE, row.row, legacy_id, "duplicate",
                                f"Tệp '{row.file}' đã gắn cho văn bản này ở dòng {prior}: bỏ "
                                "qua dòng trùng.", REJECT)  # fmt: skip
                    continue
                if prior == row.row:  # attached by a run killed before its checkpoint
                    check = inspect_attachment(self.source, row, self.mapping, None, self.texts)
                    started.append((row, doc_id, check, None))
                    continue
                check, sink = self._start(row)
                started.append((row, doc_id, check, sink))
                if sink is not None:
                    keys[doc_id][key] = row.row
            pushes: dict[ObjectId, list[tuple[LegacyFile, str]]] = {}
            for row, doc_id, check, sink in started:
                check.settle()
                if sink is not None:
                    stored = self._finish(row, check, sink)
                    pushes.setdefault(doc_id, []).append((stored, check.text))
                self._account(row, check)
        except BaseException:
            for *_, sink in started:
                if sink is not None:
                    sink.abort()
            raise
        self._push(pushes)
        run.commit(TABLE, last_row, next_phase=next_phase)

    def _start(self, row: AttachmentRow) -> tuple[FileCheck, GridSink | None]:
        """Stream a file into GridFS; the sink is None if the file is missing."""
        name = row.name or posixpath.basename(row.file)
        metadata = {"import_batch_id": self.run.batch_id, "legacy_id": row.legacy_id,
                    "legacy_path": row.file, "row": row.row}  # fmt: skip
        sink = GridSink(
            self.fs,
            legacy_file_id(self.run.batch_id, row.row),
            storage.clean_filename(name),
            metadata,
            self.run.heartbeat,
        )
        try:
            check = inspect_attachment(self.source, row, self.mapping, sink.write, self.texts)
        except BaseException:
            sink.abort()
            raise
        if check.status == MISSING:
            sink.abort()
            return check, None
        return check, sink

    def _finish(self, row: AttachmentRow, check: FileCheck, sink: GridSink) -> LegacyFile:
        """Close a settled file's GridFS entry with its flags; return its attachment."""
        flags = [FLAG_NAMES.get(f, f) for f in check.flags]
        file_id = sink.close(flags)
        self.run.files_bytes += sink.size
        name = row.name or posixpath.basename(row.file)
        stored = LegacyFile(
            file_id=file_id,
            filename=storage.clean_filename(name, sink.mime),
            mime=sink.mime,
            size=sink.size,
            sha256=sink.digest.hexdigest(),
            uploaded_at=utcnow(),
            flags=flags,
            text_extracted=bool(check.text),
            legacy_path=row.file,
            legacy_key=row.file.casefold(),
            legacy_row=row.row,
            legacy_status=check.status,
        )
        stored.validate()
        return stored

    def _account(self, row: AttachmentRow, check: FileCheck) -> None:
        run = self.run
        legacy_id = row.legacy_id
        if check.status == MISSING:
            run.count(TABLE, "missing")
            run.problem(TABLE, row.row, legacy_id, "missing_file", check.reason, REJECT)
            run.row_problems(TABLE, row, only_warnings=True)
            return
        run.count(TABLE, "stored" if check.status == OK else "flawed")
        run.row_problems(TABLE, row, only_warnings=True)
        for flag, reason in zip(check.flags, check.reasons, strict=True):
            run.problem(TABLE, row.row, legacy_id, flag,
                        f"{reason} Tệp vẫn được lưu kèm cờ '{FLAG_NAMES.get(flag, flag)}'.",
                        WARNING)  # fmt: skip

    def _push(self, pushes: dict[ObjectId, list[tuple[LegacyFile, str]]]) -> None:
        """Attach the stored files (and their text) to their documents, to be re-indexed."""
        if not pushes:
            return
        with_text = [doc_id for doc_id, items in pushes.items() if any(t for _, t in items)]
        # The text goes to its own field, not after the body: the body stays as the legacy
        # system had it, and copies of one body keep sharing one analysis in the index.
        texts = {
            raw["_id"]: raw.get("attachment_text") or ""
            for raw in self.collection.find({"_id": {"$in": with_text}}, {"attachment_text": 1})
        } if with_text else {}  # fmt: skip
        now = utcnow()
        operations = []
        for doc_id, items in pushes.items():
            update: dict[str, Any] = {
                "$push": {"attachments": {"$each": [f.to_mongo().to_dict() for f, _ in items]}},
                "$set": {"updated_at": now, "index_status": "pending"},
            }
            blocks = [text for _, text in items if text]
            if blocks:
                current = texts.get(doc_id, "")
                update["$set"]["attachment_text"] = "\n\n".join(
                    [current, *blocks] if current else blocks
                )
            keys = [f.legacy_key for f, _ in items]
            operations.append(({"_id": doc_id, "attachments.legacy_key": {"$nin": keys}}, update))
        if update_each(self.collection, operations) != len(operations):
            raise Conflict("Văn bản chuyển đổi bị thay đổi trong lúc gắn tệp; hãy chạy tiếp lô.")
