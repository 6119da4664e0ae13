"""Import and purge jobs on a real RQ worker: results, progress, failures, resume."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from jobs import fetch_job
from models.document import Document
from models.legacy_import import ImportBatch
from tests.conftest import api_token
from tests.workflows.legacy.conftest import ExportKit, make_pdf
from tests.workflows.legacy.test_legacy_faults import build_faulty_export
from tests.workflows.test_legacy_import import sample_slice
from workflows import legacy_import as importer
from workflows import legacy_import_report
from workflows.legacy import default_mapping


@pytest.fixture
def small(tmp_path) -> Path:
    """The first 40 sample documents: 10 files, 80 history rows."""
    return sample_slice(tmp_path / "small", 40)


def queue_import(path: Path, user) -> ImportBatch:
    mapping = default_mapping()
    batch = importer.create_batch(
        path, kind="path", name=path.name, mapping=mapping, mapping_name=mapping.name, user=user
    )
    importer.enqueue_run(batch, user)
    return ImportBatch.objects.get(pk=batch.pk)


def job_json(client, token: str, job_id: str) -> dict:
    response = client.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json
    return response.json


def test_import_job_reports_progress_and_the_report(client, users, run_jobs, monkeypatch, tmp_path):
    admin = users["admin"]
    monkeypatch.setattr(legacy_import_report, "INLINE_PROBLEMS", 3)
    folder = build_faulty_export(ExportKit(tmp_path), make_pdf("Điều 1."), "csv-utf8-bom")
    batch = queue_import(folder, admin)
    assert importer.enqueue_run(batch, admin) == batch.job_id  # a double click: same job
    token = api_token(client, "admin")
    assert job_json(client, token, batch.job_id)["status"] == "queued"
    assert run_jobs(("import",))
    body = job_json(client, token, batch.job_id)
    assert body["status"] == "finished"
    assert body["progress"]["done"] == body["progress"]["total"] > 0
    result = body["result"]
    assert set(result) >= {"documents", "attachments", "history", "problems", "problem_count"}
    assert result["documents"] == {
        "total": 17,
        "imported": 12,
        "already_imported": 0,
        "duplicates": 1,
        "rejected": 4,
    }
    assert result["attachments"]["total"] == 14 and result["history"]["total"] == 5
    assert len(result["problems"]) == 3 and result["problems_truncated"]
    assert result["problem_count"] > 3
    assert set(result["problems"][0]) >= {"row", "legacy_id", "kind", "reason"}
    assert result["problems"][0]["severity"] == "reject"  # rejections come first
    assert result["problems_csv"] == f"/api/v1/legacy-imports/{batch.pk}/problems.csv"
    job = fetch_job(batch.job_id)
    assert job.meta["progress"]["phase"] == "done"
    assert job.meta["progress"]["files"]["done"] == 11  # stored + flawed + missing


def test_failed_job_says_why_and_resumes(client, users, run_jobs, tmp_path, small):
    admin = users["admin"]
    export = small
    batch = queue_import(export, admin)
    shutil.move(export, tmp_path / "moved")
    run_jobs(("import",))
    token = api_token(client, "admin")
    body = job_json(client, token, batch.job_id)
    assert body["status"] == "failed"
    assert "Không tìm thấy thư mục hoặc tệp zip" in body["error"]
    assert "Traceback" not in str(body)
    failed = ImportBatch.objects.get(pk=batch.pk)
    assert failed.status == "failed" and failed.error == body["error"]
    shutil.move(tmp_path / "moved", export)
    job_id = importer.resume(str(batch.pk), admin)
    assert job_id != batch.job_id
    run_jobs(("import",))
    assert job_json(client, token, job_id)["result"]["documents"]["imported"] == 40


def test_stalled_batch_is_resumed_by_a_new_job(users, run_jobs, small):
    admin = users["admin"]
    batch = queue_import(small, admin)
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    # What a worker killed mid-run leaves: running, silent for an hour, a lease held.
    ImportBatch.objects(pk=batch.pk).update_one(
        set__status="running", set__heartbeat_at=stale, set__lease="dead", set__attempts=1
    )
    fetch_job(batch.job_id).cancel()
    job_id = importer.resume(str(batch.pk), admin)
    run_jobs(("import",))
    assert fetch_job(job_id).return_value()["documents"]["imported"] == 40
    assert ImportBatch.objects.get(pk=batch.pk).status == "done"


def test_purge_job_removes_the_batch(users, run_jobs, small):
    admin = users["admin"]
    batch = queue_import(small, admin)
    run_jobs(("import",))
    marked = importer.request_purge(str(batch.pk), admin)
    job_id = importer.enqueue_purge(marked, admin)
    run_jobs(("import",))
    assert fetch_job(job_id).return_value() == {"documents": 40, "files": 10}
    assert Document.objects(migrated=True).count() == 0
    assert ImportBatch.objects.get(pk=batch.pk).status == "purged"


def test_queued_batch_whose_job_was_lost_can_be_started_again(users, run_jobs, small):
    from jobs import redis_connection

    admin = users["admin"]
    batch = queue_import(small, admin)
    assert not importer.can_resume(batch)  # its job is waiting
    redis_connection().flushdb()  # e.g. Redis restarted without persistence
    assert importer.can_resume(ImportBatch.objects.get(pk=batch.pk))
    job_id = importer.resume(str(batch.pk), admin)
    run_jobs(("import",))
    assert fetch_job(job_id).return_value()["documents"]["imported"] == 40
