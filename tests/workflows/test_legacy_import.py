"""The legacy importer on real exports: the sample, every fault, re-runs, crashes, purge."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mongoengine.connection import get_db

from jobs import search as search_jobs
from models.audit import AuditEntry
from models.document import Document
from models.legacy_import import ImportBatch, ImportProblem, legacy_object_id
from tests.workflows.legacy.conftest import ExportKit, make_pdf
from tests.workflows.legacy.test_legacy_faults import IMPORTABLE, build_faulty_export
from workflows import legacy_import as importer
from workflows import legacy_import_documents as documents_phase
from workflows import legacy_import_files as files_phase
from workflows import legacy_import_history as history_phase
from workflows import legacy_import_index as index_step
from workflows import storage
from workflows.errors import Forbidden
from workflows.legacy import default_mapping, open_export, read_documents
from workflows.legacy.files import TextWorker
from workflows.legacy_import_run import ImportRun

# shared/ sits beside the repository, as in CI.
SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "legacy-sample"


def sample_slice(dest: Path, count: int) -> Path:
    """Copy the first ``count`` documents of the sample with their files and history."""
    import csv
    import json
    import shutil

    lines = (SAMPLE / "documents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    dest.mkdir(parents=True)
    (dest / "documents.jsonl").write_text("".join(lines[:count]), encoding="utf-8")
    ids = {json.loads(line)["legacy_id"] for line in lines[:count]}
    for name in ("attachments.csv", "history.csv"):
        with open(SAMPLE / name, encoding="utf-8-sig", newline="") as src:
            rows = list(csv.reader(src))
        kept = [rows[0], *(r for r in rows[1:] if r[0] in ids)]
        with open(dest / name, "w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows(kept)
        if name == "attachments.csv":
            for row in kept[1:]:
                (dest / row[1]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(SAMPLE / row[1], dest / row[1])
    (dest / "manifest.json").write_text(
        json.dumps({"system": "VNPT iOffice", "organization": "Sở Công Thương"}), encoding="utf-8"
    )
    return dest


def new_batch(path: Path, user: Any = None, mapping: Any = None) -> ImportBatch:
    mapping = mapping or default_mapping()
    return importer.create_batch(
        path, kind="path", name=path.name, mapping=mapping, mapping_name=mapping.name, user=user
    )


def run_import(path: Path, user: Any = None) -> tuple[ImportBatch, dict[str, Any]]:
    batch = new_batch(path, user)
    report = importer.run_batch(str(batch.pk))
    return ImportBatch.objects.get(pk=batch.pk), report


def reconciles(report: dict[str, Any]) -> None:
    for table in ("documents", "attachments", "history"):
        counts = report[table]
        assert counts["total"] == sum(v for k, v in counts.items() if k != "total"), table


def gridfs_ids() -> set[Any]:
    return {f["_id"] for f in get_db()["fs.files"].find({}, {"_id": 1})}


def chunk_owners() -> set[Any]:
    return set(get_db()["fs.chunks"].distinct("files_id"))


def assert_indexed() -> None:
    """Every imported document is in the search index at its current version, once."""
    from jobs.search import current_versions
    from search_index.writer import check
    from workflows.search import index_path

    drift = check(index_path(), current_versions())
    assert drift.clean, drift
    statuses = {(d.index_status, d.indexed_version == d.version) for d in Document.objects}
    assert statuses == {("indexed", True)}


def assert_no_orphans() -> None:
    referenced = {a.file_id for d in Document.objects(migrated=True) for a in d.attachments}
    assert gridfs_ids() == referenced
    assert chunk_owners() <= referenced
    assert storage.orphan_files() == []


# The sample ----------------------------------------------------------------------------------


@pytest.fixture
def admin(users):
    return users["admin"]


def test_sample_imports_every_record_and_reconciles(admin, users):
    batch, report = run_import(SAMPLE, admin)
    assert batch.status == "done" and report["status"] == "done"
    assert report["documents"] == {
        "total": 300,
        "imported": 300,
        "already_imported": 0,
        "duplicates": 0,
        "rejected": 0,
    }
    assert report["attachments"]["total"] == report["attachments"]["stored"] == 58
    assert report["history"] == {
        "total": 584,
        "imported": 584,
        "already_imported": 0,
        "rejected": 0,
    }
    reconciles(report)
    assert Document.objects(import_batch_id=str(batch.pk)).count() == 300
    assert sum(len(d.history) for d in Document.objects(migrated=True)) == 584
    assert_no_orphans()
    assert len(gridfs_ids()) == 58
    # The sample has one issuer longer than the model keeps: cut, with a warning, kept whole.
    assert [(p["kind"], p["legacy_id"]) for p in report["problems"]] == [
        ("truncated", "400106-VBĐT")
    ]
    long_one = Document.objects.get(legacy_id="400106-VBĐT")
    assert len(long_one.issuer) == 300 and len(long_one.legacy_raw["full"]["issuer"]) == 385
    check_sample_documents(admin, users)
    assert_indexed()  # with the text of the PDFs: their push changed the version


def check_sample_documents(admin: Any, users: dict[str, Any]) -> None:
    """The imported sample documents are migrated, read-only, complete records."""
    doc = Document.objects.get(legacy_id="400001-VBĐT")
    assert doc.pk == legacy_object_id("400001-VBĐT")
    assert (doc.migrated, doc.state, doc.closed) == (True, "migrated", True)
    assert doc.legacy_system == "VNPT iOffice" and doc.direction == "outgoing"
    assert doc.notation == "119/2016/TT-BQP" and doc.number == 119
    assert doc.doc_type_name == "Thông tư" and doc.issuer == "Bộ Quốc phòng"
    assert doc.status_text == "Lưu" and doc.content.startswith("Điều 2. Hiệu lực thi hành")
    assert doc.visible_user_ids == [str(admin.pk)] and doc.visible_unit_ids == []
    (attachment,) = doc.attachments
    assert attachment.filename == "Thông tư 119_2016_TT-BQP.pdf"
    assert attachment.mime == "application/pdf" and attachment.flags == []
    assert attachment.sha256 == "c613428264195e4f5f050fbfb4ea015eeed7467b4fe3fb3ee419c26bf0bc6d8b"
    assert storage.read_file(attachment.file_id)[:5] == b"%PDF-"
    assert hashlib.sha256(storage.read_file(attachment.file_id)).hexdigest() == attachment.sha256
    # The PDF's text is searchable on the document, apart from the body kept as it was.
    assert doc.attachment_text.startswith("Thông tư 119/2016/TT-BQP\nĐiều 2. Hiệu lực")
    assert "Thông tư 119/2016/TT-BQP" not in doc.content
    assert attachment.text_extracted
    first, second = doc.history
    assert first.legacy and first.action == "legacy" and first.label == "Tiếp nhận"
    assert first.actor_name == "Trần Thị Bình – Phòng Kế hoạch - Tài chính"
    assert first.at == dt.datetime(2019, 7, 24, 0, 22, tzinfo=dt.UTC)
    assert first.comment == "Đã xử lý, lưu hồ sơ." and second.label == "Hoàn thành"
    incoming = Document.objects.get(legacy_id="400000-VBĐT")
    assert incoming.arrival_number == 8003 and incoming.urgency == 1
    assert incoming.issued_on == dt.date(2012, 5, 14)
    assert incoming.recipients == ["Như trên", "Lưu: VT"]
    # Who sees them: view_all holders (leaders, clerks, archivists) and the importing admin.
    leader, clerk, specialist = users["giamdoc"], users["vanthu"], users["chuyenvien"]
    assert Document.objects.visible_to(leader).filter(migrated=True).count() == 300
    assert Document.objects.visible_to(admin).filter(migrated=True).count() == 300
    assert Document.objects.visible_to(clerk).filter(migrated=True).count() == 300
    assert Document.objects.visible_to(specialist).filter(migrated=True).count() == 0
    from workflows.document import update_metadata

    with pytest.raises(Forbidden):
        update_metadata(doc.pk, clerk, {"subject": "Sửa"}, doc.version)


def test_rerun_adds_nothing_and_says_already_imported(admin):
    run_import(SAMPLE, admin)
    files_before = gridfs_ids()
    second, report = run_import(SAMPLE, admin)
    assert report["documents"] == {
        "total": 300,
        "imported": 0,
        "already_imported": 300,
        "duplicates": 0,
        "rejected": 0,
    }
    assert report["attachments"]["already_imported"] == 58 == report["attachments"]["total"]
    assert report["history"]["already_imported"] == 584 == report["history"]["total"]
    reconciles(report)
    assert Document.objects.count() == 300
    assert Document.objects(import_batch_id=str(second.pk)).count() == 0
    assert gridfs_ids() == files_before
    assert sum(len(d.history) for d in Document.objects(migrated=True)) == 584
    kinds = {p.kind for p in ImportProblem.objects(batch_id=str(second.pk))}
    assert kinds == {"already_imported"}
    assert report["problem_count"] == 300
    assert "đã được nhập trước đây" in report["problems"][0]["reason"]


def test_documents_are_written_as_mongoengine_would(admin):
    """The fast raw builder gives what Document(...).to_mongo() gives, and it validates."""
    mapping = default_mapping()
    ctx = documents_phase.DocumentContext.load(
        "b" * 24, "VNPT iOffice", [str(admin.pk)], dt.datetime(2024, 1, 1, tzinfo=dt.UTC), mapping
    )
    with open_export(SAMPLE) as source:
        rows = list(read_documents(source))
    for row in rows[:120]:
        data, _ = documents_phase.build_document(row, ctx)
        doc = Document._from_son(dict(data))
        doc.validate()
        assert doc.to_mongo().to_dict() == data


# Every fault ---------------------------------------------------------------------------------


@pytest.fixture
def faulty_export(tmp_path, pdf_bytes) -> Path:
    return build_faulty_export(ExportKit(tmp_path), pdf_bytes, "jsonl")


@pytest.fixture(scope="session")
def pdf_bytes() -> bytes:
    return make_pdf("Quyết định số 12/QĐ-UBND\nĐiều 1. Phê duyệt kế hoạch chuyển đổi số.")


def problems_of(batch: ImportBatch) -> list[tuple[str, int | None, str | None, str, str]]:
    return sorted(
        (p.table, p.row, p.legacy_id, p.kind, p.severity)
        for p in ImportProblem.objects(batch_id=str(batch.pk))
    )


def test_every_fault_is_accounted_for(admin, faulty_export):
    batch, report = run_import(faulty_export, admin)
    reconciles(report)
    assert report["documents"] == {
        "total": 18,
        "imported": 12,
        "already_imported": 0,
        "duplicates": 1,
        "rejected": 5,
    }
    assert sorted(d.legacy_id for d in Document.objects(migrated=True)) == sorted(IMPORTABLE)
    assert report["attachments"] == {
        "total": 14,
        "stored": 5,
        "flawed": 5,
        "missing": 1,
        "already_imported": 0,
        "duplicates": 1,
        "rejected": 2,
    }
    assert report["history"] == {"total": 5, "imported": 4, "already_imported": 0, "rejected": 1}
    problems = problems_of(batch)
    rejected_docs = [p for p in problems if p[0] == "documents" and p[4] == "reject"]
    assert sorted(p[3] for p in rejected_docs) == sorted(
        [
            "malformed_json",
            "not_an_object",
            "missing_legacy_id",
            "invalid_direction",
            "invalid_direction",
            "duplicate",
        ]
    )
    assert ("documents", 10, "L-001", "duplicate", "reject") in problems
    # Warnings of imported rows: impossible dates, unknown labels.
    assert ("documents", 9, "L-007", "invalid_date", "warning") in problems
    assert ("documents", 17, "L-015", "unknown_label", "warning") in problems
    # Files: each flaw is reported and the file kept with its flag.
    flags = {
        d.legacy_id: [(a.legacy_row, a.flags) for a in d.attachments]
        for d in Document.objects(migrated=True)
    }
    assert flags["L-004"] == [(4, ["empty"])]
    assert flags["L-005"] == [(5, ["sha_mismatch"])]
    assert flags["L-006"] == [(6, ["damaged"])]
    assert flags["L-007"] == [(7, ["encrypted"])]
    assert flags["L-016"] == [(13, ["damaged"])]
    assert flags["L-001"] == [(1, [])] and flags["L-013"] == [(8, [])]
    assert flags["L-003"] == []  # its file is missing: reported, nothing stored
    assert ("attachments", 3, "L-003", "missing_file", "reject") in problems
    assert ("attachments", 14, "L-001", "duplicate", "reject") in problems
    assert ("attachments", 10, "L-015", "unsafe_path", "reject") in problems
    assert ("attachments", 5, "L-005", "sha_mismatch", "warning") in problems
    empty = Document.objects.get(legacy_id="L-004").attachments[0]
    assert empty.size == 0 and storage.read_file(empty.file_id) == b""
    altered = Document.objects.get(legacy_id="L-005").attachments[0]
    assert storage.read_file(altered.file_id).endswith(b"% altered after export\n")
    # History: the impossible time is kept as text on the entry, with a warning.
    l003 = Document.objects.get(legacy_id="L-003")
    (entry,) = l003.history
    assert entry.detail["time_text"] == "31/02/2019 10:00" and "31/02/2019 10:00" in entry.label
    assert ("history", 4, "L-003", "invalid_date", "warning") in problems
    assert ("history", 5, None, "missing_legacy_id", "reject") in problems
    # Impossible document dates stay as raw text in the record.
    l007 = Document.objects.get(legacy_id="L-007")
    assert l007.issued_on is None and l007.legacy_raw["unparsed"]["signed_date"] == "31/02/2020"
    assert Document.objects.get(legacy_id="L-003").legacy_raw["html"]["body_text"].startswith("<p>")
    assert all(p["reason"] for p in report["problems"])
    assert_no_orphans()


def test_importer_specific_rules(admin, tmp_path, pdf_bytes):
    kit = ExportKit(tmp_path)
    base = {"direction": "den", "subject": "V/v thử", "urgency": "Thường", "secrecy": "Thường"}
    long_id = "X" * 130
    docs = [
        {
            **base,
            "legacy_id": "A-1",
            "signer": "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC\nNguyễn Văn An",
            "arrival_number": "12a",
            "agency": "Sở " * 200,
        },
        {**base, "legacy_id": "A-2", "subject": "", "secrecy": "Mật cấp cao"},
        {**base, "legacy_id": long_id},
        {**base, "legacy_id": "A-4", "direction": "xyz"},
        {**base, "legacy_id": "A-1", "subject": "trùng"},
    ]
    folder = kit.write(
        "rules",
        {
            "manifest.json": '{"system": "eOffice Sở", "counts": {"documents": 9}}',
            "documents.jsonl": kit.jsonl_text(docs),
            "attachments.csv": kit.csv_text(
                ["legacy_id", "file", "name", "size", "sha256"],
                [
                    {"legacy_id": "A-4", "file": "files/a.pdf", "name": "a.pdf"},
                    {"legacy_id": "ZZZ", "file": "files/a.pdf", "name": "a.pdf"},
                    {"legacy_id": "A-1", "file": "files/a.pdf", "name": "a.pdf"},
                ],
            ),
            "history.csv": kit.csv_text(
                ["legacy_id", "time", "actor", "unit", "action", "note"],
                [
                    {"legacy_id": "ZZZ", "time": "01/01/2020 08:00", "actor": "A", "action": "X"},
                    {"legacy_id": "A-2", "time": "01/01/2020 08:00", "actor": "", "action": ""},
                ],
            ),
            "files/a.pdf": pdf_bytes,
        },
    )
    batch, report = run_import(folder, admin)
    reconciles(report)
    assert report["documents"] == {
        "total": 5,
        "imported": 2,
        "already_imported": 0,
        "duplicates": 1,
        "rejected": 2,
    }
    assert report["attachments"] == {
        "total": 3,
        "stored": 1,
        "flawed": 0,
        "missing": 0,
        "already_imported": 0,
        "duplicates": 0,
        "rejected": 2,
    }
    assert report["history"] == {"total": 2, "imported": 1, "already_imported": 0, "rejected": 1}
    problems = problems_of(batch)
    assert ("documents", 3, long_id, "legacy_id_too_long", "reject") in problems
    assert ("attachments", 1, "A-4", "document_not_imported", "reject") in problems
    assert ("attachments", 2, "ZZZ", "document_not_imported", "reject") in problems
    assert ("history", 1, "ZZZ", "document_not_imported", "reject") in problems
    assert ("documents", 2, "A-2", "secrecy_assumed", "warning") in problems
    assert ("documents", 2, "A-2", "missing_subject", "warning") in problems
    assert ("manifest", None, None, "count_mismatch", "warning") in problems
    a1, a2 = Document.objects.get(legacy_id="A-1"), Document.objects.get(legacy_id="A-2")
    assert (a1.signer_authority, a1.signer_title, a1.signer_name) == (
        "KT.",
        "GIÁM ĐỐC PHÓ GIÁM ĐỐC",
        "Nguyễn Văn An",
    )
    assert a1.display_signer == "KT. GIÁM ĐỐC PHÓ GIÁM ĐỐC - Nguyễn Văn An"
    assert a1.arrival_number is None and a1.legacy_raw["arrival_number"] == "12a"
    assert a1.legacy_system == "eOffice Sở"
    assert a2.subject == "(Không có trích yếu)" and a2.secrecy == 1
    assert a2.history[0].actor_name == "Không rõ người xử lý"
    # Secret documents stay hidden from the uncleared admin who imported them.
    assert not Document.objects.visible_to(admin).filter(legacy_id="A-2")
    # A re-run keeps calling the in-export duplicate a duplicate.
    _, again = run_import(folder, admin)
    assert again["documents"] == {
        "total": 5,
        "imported": 0,
        "already_imported": 2,
        "duplicates": 1,
        "rejected": 2,
    }


def test_signer_blocks_split_into_authority_title_and_name():
    split = documents_phase.split_signer
    assert split("KT TỔNG GIÁM ĐỐC - Huỳnh Quang Liêm") == (
        "KT.",
        "TỔNG GIÁM ĐỐC",
        "Huỳnh Quang Liêm",
    )
    assert split("TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH\nLê Văn B") == (
        "TM.",
        "ỦY BAN NHÂN DÂN CHỦ TỊCH",
        "Lê Văn B",
    )
    assert split("QUYỀN GIÁM ĐỐC - Lê C") == ("", "QUYỀN GIÁM ĐỐC", "Lê C")
    assert split("Nguyễn Văn A") == ("", "", "Nguyễn Văn A")
    assert split("GIÁM ĐỐC") == ("", "GIÁM ĐỐC", "")
    assert split("") == ("", "", "")


def test_zip_export_gives_the_same_result_as_the_folder(admin, tmp_path, faulty_export):
    zipped = ExportKit(tmp_path).zip(faulty_export, prefix="export-2024/")
    _, folder_report = run_import(faulty_export, admin)
    state = snapshot()
    clear_imports()
    _, zip_report = run_import(zipped, admin)
    assert without_batch(zip_report) == without_batch(folder_report)
    now = snapshot()
    for key, fields in state["documents"].items():
        for field, value in fields.items():
            assert now["documents"][key][field] == value, (key, field)
    assert now == state


# Crashes and resuming ------------------------------------------------------------------------


class Killed(BaseException):
    """Stands for kill -9: nothing of the run's own error handling gets to run."""


def snapshot() -> dict[str, Any]:
    """Everything an import leaves, minus what differs between batches (ids, clocks)."""
    from models.document_type import DocumentType
    from models.user import User

    names = {t.pk: t.name for t in DocumentType.objects}
    usernames = {str(u.pk): u.username for u in User.objects}
    docs = {}
    for raw in Document._get_collection().find({"migrated": True}):
        raw.pop("import_batch_id")
        raw.pop("updated_at")
        raw["doc_type"] = names.get(raw.get("doc_type"))
        raw["visible_user_ids"] = [usernames[u] for u in raw["visible_user_ids"]]
        for a in raw["attachments"]:
            a["bytes"] = hashlib.sha256(storage.read_file(a.pop("file_id"))).hexdigest()
            a.pop("uploaded_at")
        docs[raw.pop("legacy_id")] = raw
    batch = ImportBatch.objects.order_by("-created_at").first()
    problems = sorted(
        (p.table, p.row or 0, p.legacy_id or "", p.kind, p.reason, p.severity)
        for p in ImportProblem.objects(batch_id=str(batch.pk))
    )
    return {
        "documents": docs,
        "counts": batch.counts,
        "checkpoints": batch.checkpoints,
        "problems": problems,
        "files": len(gridfs_ids()),
        "chunks": get_db()["fs.chunks"].count_documents({}),
    }


def clear_imports() -> None:
    db = get_db()
    for name in ("document", "fs.files", "fs.chunks", "import_problem", "import_batch"):
        db[name].delete_many({})


def without_batch(report: dict[str, Any]) -> dict[str, Any]:
    skip = {
        "batch_id",
        "problems_csv",
        "started_at",
        "finished_at",
        "seconds",
        "documents_per_second",
        "source",
    }
    return {k: v for k, v in report.items() if k not in skip}


@pytest.fixture
def small_batches(monkeypatch):
    """Commit every few rows, so a crash can fall between many checkpoints."""
    monkeypatch.setattr(documents_phase, "BATCH_ROWS", 20)
    monkeypatch.setattr(files_phase, "BATCH_ROWS", 7)
    monkeypatch.setattr(history_phase, "BATCH_ROWS", 90)
    monkeypatch.setattr(index_step, "INDEX_CHUNK", 30)
    monkeypatch.setattr(index_step, "FEED_BATCH", 20)
    monkeypatch.setattr(index_step, "FEED_WINDOW", 20)


def crash_on_call(monkeypatch, target: Any, name: str, call: int, after: bool = False) -> None:
    """Make ``target.name`` die (Killed) on its ``call``-th call, before or after it runs."""
    original = getattr(target, name)
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call and not after:
            raise Killed()
        result = original(*args, **kwargs)
        if calls["n"] == call and after:
            raise Killed()
        return result

    monkeypatch.setattr(target, name, wrapper)


def commit_of(table: str, call: int, after: bool = False) -> Any:
    """A crash at the ``call``-th commit of ``table`` (after its data was written)."""
    original = ImportRun.commit
    calls = {"n": 0}

    def commit(self: ImportRun, committed: str, row: int, **kwargs: Any) -> None:
        if committed == table:
            calls["n"] += 1
            if calls["n"] == call and not after:
                raise Killed()
        original(self, committed, row, **kwargs)
        if committed == table and calls["n"] == call and after:
            raise Killed()

    return commit


def close_big(self: Any, flags: list[str]) -> Any:
    """Die while the large file is open: its first chunks are in GridFS, its entry is not."""
    if self.size > 300_000:
        # GridFS sends chunks every 32 MB; write them now, as a file that large would have.
        self.grid._flush_buffer(force=True)
        assert get_db()["fs.chunks"].count_documents({"files_id": self.file_id}) >= 2
        raise Killed()
    return ORIGINAL_CLOSE(self, flags)


ORIGINAL_CLOSE = files_phase.GridSink.close

CRASHES = {
    "documents-before-checkpoint": lambda mp: mp.setattr(
        ImportRun, "commit", commit_of("documents", 3)
    ),
    "documents-after-checkpoint": lambda mp: mp.setattr(
        ImportRun, "commit", commit_of("documents", 2, after=True)
    ),
    "file-stored-not-attached": lambda mp: crash_on_call(
        mp, files_phase.AttachmentPhase, "_push", 3
    ),
    "files-attached-before-checkpoint": lambda mp: mp.setattr(
        ImportRun, "commit", commit_of("attachments", 4)
    ),
    "big-file-half-written": lambda mp: mp.setattr(files_phase.GridSink, "close", close_big),
    "history-before-checkpoint": lambda mp: mp.setattr(
        ImportRun, "commit", commit_of("history", 3)
    ),
    "history-last-checkpoint": lambda mp: mp.setattr(
        ImportRun, "commit", commit_of("history", 7, after=True)
    ),
    # The background feed: a segment committed but its documents not yet marked indexed.
    "index-feed-committed": lambda mp: crash_on_call(mp, search_jobs.IndexFeed, "_mark", 2),
    "index-feed-marked": lambda mp: crash_on_call(
        mp, search_jobs.IndexFeed, "_mark", 1, after=True
    ),
    # Killed while the last segments are built: the resumed run indexes what is pending in
    # its last step (there is no background feed past the history phase).
    "index-feed-closing": lambda mp: crash_on_call(mp, search_jobs.IndexFeed, "close", 1),
    "index-feed-closed": lambda mp: crash_on_call(
        mp, search_jobs.IndexFeed, "close", 1, after=True
    ),
    "before-finish": lambda mp: crash_on_call(mp, ImportRun, "finish", 1),
}


@pytest.fixture(scope="module")
def crash_export(tmp_path_factory) -> Path:
    """An 80-document slice of the sample plus one file larger than a GridFS chunk."""
    import shutil

    root = tmp_path_factory.mktemp("crash") / "export"
    shutil.copytree(SAMPLE, root)
    lines = (root / "documents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "documents.jsonl").write_text("".join(lines[:80]), encoding="utf-8")
    big = os.urandom(700_000)
    (root / "files" / "big.bin").write_bytes(big)
    with open(root / "attachments.csv", "a", encoding="utf-8") as out:
        out.write(
            f"400003-VBĐT,files/big.bin,Phụ lục.bin,{len(big)},{hashlib.sha256(big).hexdigest()}\n"
        )
    return root


@pytest.fixture(scope="module")
def reference_state(app, crash_export) -> dict[str, Any]:
    """The state an uninterrupted run leaves (computed once)."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(documents_phase, "BATCH_ROWS", 20)
        mp.setattr(files_phase, "BATCH_ROWS", 7)
        mp.setattr(history_phase, "BATCH_ROWS", 90)
        mp.setattr(index_step, "INDEX_CHUNK", 30)
        mp.setattr(index_step, "FEED_BATCH", 20)
        mp.setattr(index_step, "FEED_WINDOW", 20)
        from workflows.seed import seed_demo

        clear_imports()
        seed_demo()
        from models.user import User

        run_import(crash_export, User.objects.get(username="admin"))
        state = snapshot()
        clear_imports()
    finally:
        mp.undo()
    return state


@pytest.mark.parametrize("crash", list(CRASHES))
def test_killed_import_resumes_to_the_same_state(
    crash, admin, crash_export, reference_state, small_batches, monkeypatch
):
    assert reference_state["counts"]["documents"]["imported"] == 80
    assert reference_state["counts"]["attachments"]["stored"] == 24
    batch = new_batch(crash_export, admin)
    with monkeypatch.context() as patched:
        CRASHES[crash](patched)
        with pytest.raises(Killed):
            importer.run_batch(str(batch.pk))
    killed = ImportBatch.objects.get(pk=batch.pk)
    assert killed.status == "running"  # as kill -9 leaves it: the lease is still held
    with pytest.raises(Exception, match="đang chạy"):
        importer.run_batch(str(batch.pk))  # a live-looking run is not taken over...
    report = importer.run_batch(str(batch.pk), force=True)  # ...unless the admin says so
    assert report["status"] == "done"
    assert snapshot() == reference_state
    assert_no_orphans()
    assert_indexed()
    assert ImportBatch.objects.get(pk=batch.pk).attempts == 2


def test_stalled_run_is_taken_over_without_force(admin, crash_export, small_batches, monkeypatch):
    batch = new_batch(crash_export, admin)
    with monkeypatch.context() as patched:
        patched.setattr(ImportRun, "commit", commit_of("attachments", 2))
        with pytest.raises(Killed):
            importer.run_batch(str(batch.pk))
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
    ImportBatch.objects(pk=batch.pk).update_one(set__heartbeat_at=stale)
    assert importer.can_resume(ImportBatch.objects.get(pk=batch.pk))
    report = importer.run_batch(str(batch.pk))
    assert report["attachments"]["stored"] == 24 and report["documents"]["imported"] == 80


def test_failure_is_recorded_and_resumable(admin, tmp_path, pdf_bytes, small_batches, monkeypatch):
    kit = ExportKit(tmp_path)
    folder = build_faulty_export(kit, pdf_bytes, "csv-cp1258")
    batch = new_batch(folder, admin)
    with monkeypatch.context() as patched:
        patched.setattr(files_phase.AttachmentPhase, "_push", _raise_io_error)
        with pytest.raises(OSError):
            importer.run_batch(str(batch.pk))
    failed = ImportBatch.objects.get(pk=batch.pk)
    assert failed.status == "failed" and "Không đọc được bản xuất" in failed.error
    assert importer.can_resume(failed)
    report = importer.run_batch(str(batch.pk))
    assert report["documents"]["imported"] == 12 and report["attachments"]["stored"] == 5
    assert_no_orphans()


def _raise_io_error(self: Any, pushes: Any) -> Any:
    raise OSError(5, "Input/output error")


# Purge ---------------------------------------------------------------------------------------


def test_purge_deletes_the_batch_documents_and_files_only(
    admin, faulty_export, make_document, tmp_path
):
    own = make_document()
    batch, _ = run_import(faulty_export, admin)
    other, _ = run_import(sample_slice(tmp_path / "small", 40), admin)
    sample_files = {
        a.file_id for d in Document.objects(import_batch_id=str(other.pk)) for a in d.attachments
    }
    importer.request_purge(str(batch.pk), admin)
    counts = importer.purge_batch(str(batch.pk), admin.full_name)
    assert counts == {"documents": 12, "files": 10}
    assert Document.objects(import_batch_id=str(batch.pk)).count() == 0
    assert Document.objects(import_batch_id=str(other.pk)).count() == 40
    assert Document.objects(pk=own.pk).count() == 1
    assert gridfs_ids() == sample_files
    assert_no_orphans()
    purged = ImportBatch.objects.get(pk=batch.pk)
    assert purged.status == "purged" and purged.purged_by_name == admin.full_name
    entry = AuditEntry.objects(action="legacy_import.purge").first()
    assert entry.object_id == str(batch.pk) and entry.detail == counts
    # The same export can come in again afterwards.
    _, again = run_import(faulty_export, admin)
    assert again["documents"]["imported"] == 12


def test_purge_is_refused_while_a_run_holds_the_batch(admin, crash_export, monkeypatch):
    batch = new_batch(crash_export, admin)
    with monkeypatch.context() as patched:
        patched.setattr(ImportRun, "commit", commit_of("history", 1))
        with pytest.raises(Killed):
            importer.run_batch(str(batch.pk))
    with pytest.raises(Exception, match="chờ nó dừng"):
        importer.request_purge(str(batch.pk), admin)


def test_purge_also_removes_files_of_an_interrupted_run(admin, crash_export, monkeypatch):
    batch = new_batch(crash_export, admin)
    with monkeypatch.context() as patched:
        crash_on_call(patched, files_phase.AttachmentPhase, "_push", 1)
        with pytest.raises(Killed):
            importer.run_batch(str(batch.pk))
    assert gridfs_ids()  # written, never attached
    ImportBatch.objects(pk=batch.pk).update_one(set__status="failed")
    importer.request_purge(str(batch.pk), admin)
    importer.purge_batch(str(batch.pk))
    assert gridfs_ids() == set() and chunk_owners() == set()
    assert Document.objects.count() == 0


# A real kill -9 (needs a real MongoDB: TEST_MONGODB_URI) -------------------------------------


@pytest.mark.skipif(not os.environ.get("TEST_MONGODB_URI"), reason="needs TEST_MONGODB_URI")
def test_kill_9_of_the_cli_then_resume(app, crash_export):
    env = {
        **os.environ,
        "MONGODB_URI": os.environ["TEST_MONGODB_URI"],
        "VANTHU_MONGODB_DB": app.config["MONGODB_DB"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": "test-secret",
        "MASTER_KEY": "test-master",
        "VANTHU_SEED_DEMO_ON_START": "false",
    }
    root = Path(__file__).resolve().parents[2]
    # The flask CLI with small document batches, so the kill lands between checkpoints.
    boot = (
        "import sys; import workflows.legacy_import_documents as d; d.BATCH_ROWS = 10; "
        "from flask.cli import main; sys.argv = ['flask', *sys.argv[1:]]; main()"
    )
    flask = [sys.executable, "-c", boot, "--app", "app", "legacy"]
    command = [*flask, "import", str(crash_export)]
    uninterrupted = subprocess.run(command, cwd=root, env=env, capture_output=True, check=True)
    assert b'"imported": 80' in uninterrupted.stdout
    reference = snapshot()
    clear_imports()
    proc = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while Document.objects.count() < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    batch = ImportBatch.objects.order_by("-created_at").first()
    assert batch.status == "running", "the import ended before the kill: make the export larger"
    resume = [*flask, "resume", str(batch.pk), "--force"]
    subprocess.run(resume, cwd=root, env=env, capture_output=True, check=True)
    assert snapshot() == reference
    assert_no_orphans()


def test_background_feed_reads_documents_once_their_files_are_in(
    admin, crash_export, small_batches, monkeypatch
):
    """Documents read before their files came would be indexed twice: they wait instead."""
    files_when_read: dict[str, list[int]] = {}
    original = search_jobs.IndexFeed.add

    def add(self: search_jobs.IndexFeed, ids: list[str], *args: Any, **kwargs: Any) -> None:
        for doc in Document.objects(pk__in=ids).only("attachments"):
            files_when_read.setdefault(str(doc.pk), []).append(len(doc.attachments))
        original(self, ids, *args, **kwargs)

    monkeypatch.setattr(search_jobs.IndexFeed, "add", add)
    report = importer.run_batch(str(new_batch(crash_export, admin).pk))
    assert report["status"] == "done"
    final = {str(d.pk): len(d.attachments) for d in Document.objects(migrated=True)}
    assert files_when_read == {doc_id: [count] for doc_id, count in final.items()}
    assert sum(1 for count in final.values() if count) == 24
    assert_indexed()


def test_idle_feed_queries_pending_documents_once_per_change(
    admin, crash_export, small_batches, monkeypatch
):
    """After the documents phase, an idle feed does not scan the batch after every commit."""
    phases: list[str] = []
    original = index_step.IndexStep._pending_ids

    def pending_ids(self: index_step.IndexStep) -> list[Any]:
        phases.append(self.run.phase)
        return original(self)

    pump = index_step.IndexStep.pump

    def pump_when_idle(self: index_step.IndexStep) -> None:
        # The index processes keep up (as with a fast index): every commit finds them idle.
        while self.feed is not None and self.feed.busy:
            time.sleep(0.01)
            self.feed.poll()
        pump(self)

    monkeypatch.setattr(index_step.IndexStep, "_pending_ids", pending_ids)
    monkeypatch.setattr(index_step.IndexStep, "pump", pump_when_idle)
    report = importer.run_batch(str(new_batch(crash_export, admin).pk))
    assert report["status"] == "done"
    # Many commits: attachments every 7 rows, history every 90.
    assert report["attachments"]["total"] > 3 * files_phase.BATCH_ROWS
    # One query once the documents are in, one when the files are in.
    assert phases.count("attachments") + phases.count("history") <= 2
    assert_indexed()


def test_a_pdf_that_crashes_the_reader_is_kept_flagged_and_the_import_ends(
    admin, crash_export, tmp_path, monkeypatch
):
    """The file that kills the PDF text worker is damaged evidence, not a failed import."""
    import functools
    import shutil

    from tests.workflows.pdf_reader_crash import MARKER, crash_on_marker

    export = shutil.copytree(crash_export, tmp_path / "export")
    (export / "manifest.json").unlink()  # (its counts are those of the whole sample)
    good = next((export / "files").rglob("*.pdf")).read_bytes()
    (export / "files" / "boom.pdf").write_bytes(good.replace(b"\n", b"\n" + MARKER + b"\n", 1))
    with open(export / "attachments.csv", "a", encoding="utf-8") as out:
        out.write("400003-VBĐT,files/boom.pdf,Tờ trình.pdf,,\n")
    monkeypatch.setattr(files_phase, "TextWorker", functools.partial(TextWorker, crash_on_marker))
    batch, report = run_import(export, admin)
    assert report["status"] == "done"
    reconciles(report)
    assert report["attachments"]["flawed"] == 1
    problem = ImportProblem.objects.get(batch_id=str(batch.pk), kind="damaged_pdf")
    assert problem.legacy_id == "400003-VBĐT" and "dừng đột ngột" in problem.reason
    doc = Document.objects.get(legacy_id="400003-VBĐT")
    boom = next(a for a in doc.attachments if a.legacy_path == "files/boom.pdf")
    assert boom.flags == ["damaged"] and not boom.text_extracted
    assert storage.read_file(boom.file_id) == (export / "files" / "boom.pdf").read_bytes()
    assert sum(a.text_extracted for d in Document.objects(migrated=True) for a in d.attachments)
    assert_indexed()
    assert_no_orphans()
