"""Migration screens, API and CLI: who may, what they show, what they refuse."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from models.audit import AuditEntry
from models.document import Document
from models.legacy_import import ImportBatch, ImportMapping
from tests.conftest import api_token, csrf_token, web_login
from tests.workflows.legacy.conftest import ExportKit, make_pdf
from tests.workflows.legacy.test_legacy_faults import build_faulty_export
from tests.workflows.test_legacy_import import sample_slice
from workflows.legacy.mapping import DEFAULT_MAPPING_PATH

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "legacy-sample"
VENDOR_MAPPING = DEFAULT_MAPPING_PATH.with_name("example_vendor_mapping.yaml")


@pytest.fixture
def roots(app, monkeypatch):
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [str(SAMPLE.parent)])
    return SAMPLE.parent


@pytest.fixture
def small(app, monkeypatch, tmp_path) -> Path:
    """The first 40 sample documents (10 files, 80 history rows), under an allowed root."""
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [str(tmp_path)])
    return sample_slice(tmp_path / "small", 40)


def bearer(client, username: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, username)}"}


# API -----------------------------------------------------------------------------------------


def test_api_imports_a_server_path_and_reports(client, roots, run_jobs):
    headers = bearer(client)
    response = client.post("/api/v1/legacy-imports", json={"path": str(SAMPLE)}, headers=headers)
    assert response.status_code == 202, response.json
    body = response.json
    assert set(body) == {"job_id", "batch_id", "status_url", "batch_url"}
    assert run_jobs(("import",))
    job = client.get(body["status_url"], headers=headers).json
    assert job["status"] == "finished"
    result = job["result"]
    assert result["documents"] == {
        "total": 300,
        "imported": 300,
        "already_imported": 0,
        "duplicates": 0,
        "rejected": 0,
    }
    assert result["attachments"]["stored"] == 58 and result["history"]["imported"] == 584
    batch = client.get(body["batch_url"], headers=headers).json
    assert batch["status"] == "done" and batch["report"]["documents"]["imported"] == 300
    assert batch["progress"]["done"] == batch["progress"]["total"] == 300 + 58 + 584
    listed = client.get("/api/v1/legacy-imports", headers=headers).json["items"]
    assert [b["batch_id"] for b in listed] == [body["batch_id"]]
    csv_response = client.get(result["problems_csv"], headers=headers)
    assert csv_response.status_code == 200
    assert csv_response.mimetype == "text/csv"
    text = csv_response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["Bảng", "Dòng", "Số hiệu cũ", "Mức độ", "Loại", "Lý do"]
    assert rows[1][:5] == ["documents", "107", "400106-VBĐT", "Cảnh báo", "truncated"]


def test_api_refuses_paths_outside_the_allowed_roots(client, app, monkeypatch, tmp_path):
    headers = bearer(client)
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [])
    response = client.post("/api/v1/legacy-imports", json={"path": str(SAMPLE)}, headers=headers)
    assert response.status_code == 400
    assert "LEGACY_IMPORT_ROOTS" in response.json["error"]["message"]
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [str(tmp_path)])
    for path in (str(SAMPLE), str(tmp_path / ".." / SAMPLE.name), "/etc"):
        response = client.post("/api/v1/legacy-imports", json={"path": path}, headers=headers)
        assert response.status_code == 400, path
        assert "không nằm trong thư mục được phép" in response.json["error"]["message"]
    (tmp_path / "empty").mkdir()
    response = client.post(
        "/api/v1/legacy-imports", json={"path": str(tmp_path / "empty")}, headers=headers
    )
    assert response.status_code == 400
    assert "không phải bản xuất" in response.json["error"]["message"]
    assert client.post("/api/v1/legacy-imports", json={}, headers=headers).status_code == 400
    assert ImportBatch.objects.count() == 0


def test_api_needs_the_migration_permission(client, roots):
    for username in ("chuyenvien", "vanthu", "giamdoc"):
        response = client.post(
            "/api/v1/legacy-imports", json={"path": str(SAMPLE)}, headers=bearer(client, username)
        )
        assert response.status_code == 403
    assert client.post("/api/v1/legacy-imports", json={"path": str(SAMPLE)}).status_code == 401
    assert client.get("/api/v1/legacy-imports", headers=bearer(client, "vanthu")).status_code == 403


def test_api_imports_an_uploaded_zip_with_a_pasted_mapping(client, run_jobs, tmp_path):
    kit = ExportKit(tmp_path)
    folder = build_faulty_export(kit, make_pdf("Điều 1. Phạm vi."), "jsonl")
    zipped = kit.zip(folder, prefix="export-2024/")
    headers = bearer(client)
    with open(zipped, "rb") as stream:
        response = client.post(
            "/api/v1/legacy-imports",
            data={
                "file": (stream, "xuat-du-lieu.zip"),
                "mapping_text": DEFAULT_MAPPING_PATH.read_text(encoding="utf-8"),
            },
            headers=headers,
            content_type="multipart/form-data",
        )
    assert response.status_code == 202, response.json
    run_jobs(("import",))
    result = client.get(response.json["status_url"], headers=headers).json["result"]
    assert result["documents"]["imported"] == 12 and result["attachments"]["flawed"] == 5
    batch = ImportBatch.objects.get(pk=response.json["batch_id"])
    assert batch.source_kind == "upload" and batch.source_name == "xuat-du-lieu.zip"
    assert batch.mapping_name == "Ánh xạ nhập tay"
    assert Path(batch.source_path).is_file()
    not_zip = client.post(
        "/api/v1/legacy-imports",
        data={"file": (io.BytesIO(b"hello"), "x.zip")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert not_zip.status_code == 400 and "không phải tệp .zip" in not_zip.json["error"]["message"]
    bad_mapping = client.post(
        "/api/v1/legacy-imports",
        json={"path": "/x", "mapping": "documents: 5"},
        headers=headers,
    )
    assert bad_mapping.status_code == 400
    assert "Ánh xạ cột không hợp lệ" in bad_mapping.json["error"]["message"]


def test_api_purges_a_batch(client, small, run_jobs):
    headers = bearer(client)
    started = client.post("/api/v1/legacy-imports", json={"path": str(small)}, headers=headers)
    run_jobs(("import",))
    batch_id = started.json["batch_id"]
    response = client.delete(f"/api/v1/legacy-imports/{batch_id}", headers=headers)
    assert response.status_code == 202
    run_jobs(("import",))
    job = client.get(response.json["status_url"], headers=headers).json
    assert job["result"] == {"documents": 40, "files": 10}
    assert Document.objects(migrated=True).count() == 0
    again = client.delete(f"/api/v1/legacy-imports/{batch_id}", headers=headers)
    assert again.status_code == 409


# Screens -------------------------------------------------------------------------------------


def test_only_migration_admins_see_the_screens(client):
    web_login(client, "vanthu")
    assert client.get("/legacy-imports/").status_code == 403
    assert client.get("/legacy-imports/mappings").status_code == 403


def test_admin_starts_an_import_from_the_screen_and_reads_the_report(client, roots, run_jobs):
    web_login(client, "admin")
    page = client.get("/legacy-imports/")
    assert page.status_code == 200
    assert "Bắt đầu chuyển đổi" in page.text and str(SAMPLE) in page.text  # offered export
    response = client.post(
        "/legacy-imports/start",
        data={"path": str(SAMPLE), "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302
    detail_url = response.headers["Location"]
    batch = ImportBatch.objects.get()
    assert detail_url.endswith(f"/legacy-imports/{batch.pk}")
    status = client.get(f"/legacy-imports/{batch.pk}/status").json
    assert status["status"] == "queued" and "progress-bar" in client.get(detail_url).text
    run_jobs(("import",))
    status = client.get(f"/legacy-imports/{batch.pk}/status").json
    assert status["status"] == "done" and status["report"]["documents"]["imported"] == 300
    page = client.get(detail_url).text
    assert 'id="report-documents"' in page and "400106-VBĐT" in page
    assert 'id="imported-documents"' in page and 'id="purge-form"' in page
    csv_text = client.get(f"/legacy-imports/{batch.pk}/problems.csv").get_data(as_text=True)
    assert "400106-VBĐT" in csv_text
    assert AuditEntry.objects(action="legacy_import.create", object_id=str(batch.pk)).count() == 1


def test_screen_says_what_is_wrong(client, app, monkeypatch):
    web_login(client, "admin")
    page = client.get("/legacy-imports/")
    assert "LEGACY_IMPORT_ROOTS" in page.text
    response = client.post(
        "/legacy-imports/start",
        data={"path": "/etc", "csrf_token": csrf_token(page.text)},
        follow_redirects=True,
    )
    assert "chưa cấu hình thư mục được phép" in response.text
    assert ImportBatch.objects.count() == 0


def test_purge_from_the_screen_needs_the_typed_word(client, small, run_jobs):
    web_login(client, "admin")
    page = client.get("/legacy-imports/")
    client.post(
        "/legacy-imports/start", data={"path": str(small), "csrf_token": csrf_token(page.text)}
    )
    run_jobs(("import",))
    batch = ImportBatch.objects.get()
    detail = client.get(f"/legacy-imports/{batch.pk}").text
    token = csrf_token(detail)
    refused = client.post(
        f"/legacy-imports/{batch.pk}/purge",
        data={"csrf_token": token, "confirm": "xoa"},
        follow_redirects=True,
    )
    assert "Gõ XÓA để xác nhận" in refused.text
    assert Document.objects(migrated=True).count() == 40
    client.post(f"/legacy-imports/{batch.pk}/purge", data={"csrf_token": token, "confirm": "xóa"})
    run_jobs(("import",))
    assert Document.objects(migrated=True).count() == 0
    page = client.get(f"/legacy-imports/{batch.pk}").text
    assert "Lô đã bị xóa" in page and 'id="purge-form"' not in page


def test_resume_button_continues_a_failed_batch(client, small, run_jobs, monkeypatch):
    from workflows import legacy_import_files

    web_login(client, "admin")
    page = client.get("/legacy-imports/")
    client.post(
        "/legacy-imports/start", data={"path": str(small), "csrf_token": csrf_token(page.text)}
    )
    with monkeypatch.context() as patched:
        patched.setattr(legacy_import_files.AttachmentPhase, "_push", _fail_push)
        run_jobs(("import",))
    batch = ImportBatch.objects.get()
    detail = client.get(f"/legacy-imports/{batch.pk}").text
    assert batch.status == "failed" and 'id="resume-import"' in detail
    assert "Lỗi hệ thống khi nhập" in detail
    client.post(f"/legacy-imports/{batch.pk}/resume", data={"csrf_token": csrf_token(detail)})
    run_jobs(("import",))
    batch.reload()
    assert batch.status == "done" and batch.counts["attachments"]["stored"] == 10


def _fail_push(self, pushes):
    raise RuntimeError("database went away")


def test_mapping_screen_validates_and_saves_mappings(client, run_jobs, app, monkeypatch, tmp_path):
    web_login(client, "admin")
    page = client.get("/legacy-imports/mappings")
    assert "legacy_id: legacy_id" in page.text  # the default mapping, shown
    form = client.get("/legacy-imports/mappings/new")
    assert "documents:" in form.text  # pre-filled with the default to edit
    token = csrf_token(form.text)
    bad = client.post(
        "/legacy-imports/mappings/new",
        data={
            "csrf_token": token,
            "name": "Sai",
            "text": "documents:\n  columns:\n    Ma: soiOffice\n",
        },
    )
    assert 'id="mapping-errors"' in bad.text and "soiOffice" in bad.text
    assert ImportMapping.objects.count() == 0
    vendor = VENDOR_MAPPING.read_text(encoding="utf-8")
    checked = client.post(
        "/legacy-imports/mappings/new",
        data={"csrf_token": token, "name": "eDoc", "text": vendor, "action": "check"},
    )
    assert 'id="mapping-ok"' in checked.text and ImportMapping.objects.count() == 0
    saved = client.post(
        "/legacy-imports/mappings/new",
        data={"csrf_token": token, "name": "eDoc Tỉnh", "text": vendor, "action": "save"},
    )
    assert saved.status_code == 302
    mapping = ImportMapping.objects.get(name="eDoc Tỉnh")
    # Another vendor's export comes in through the saved mapping, no code involved.
    kit = ExportKit(tmp_path)
    folder = kit.write(
        "vendor",
        {
            "VanBan.csv": kit.encode(
                kit.csv_text(
                    ["Mã văn bản", "Loại sổ", "Số ký hiệu", "Trích yếu", "Độ khẩn", "Độ mật"],
                    [
                        {
                            "Mã văn bản": "ED-1",
                            "Loại sổ": "Văn bản đến",
                            "Số ký hiệu": "5/UBND-VP",
                            "Trích yếu": "V/v thử",
                            "Độ khẩn": "Hỏa tốc hẹn giờ",
                            "Độ mật": "Không mật",
                        }
                    ],
                    ";",
                ),
                "cp1258",
            ),
        },
    )
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [str(tmp_path)])
    page = client.get("/legacy-imports/")
    assert "eDoc Tỉnh" in page.text
    data = {"path": str(folder), "mapping_id": str(mapping.pk), "csrf_token": csrf_token(page.text)}
    client.post("/legacy-imports/start", data=data)
    run_jobs(("import",))
    doc = Document.objects.get(legacy_id="ED-1")
    assert (doc.direction, doc.urgency, doc.notation) == ("incoming", 3, "5/UBND-VP")
    assert ImportBatch.objects.get().mapping_name == "eDoc Tỉnh"


# CLI -----------------------------------------------------------------------------------------


def test_cli_explains_embedded_mode_and_fails(runner):
    result = runner.invoke(args=["legacy", "import", str(SAMPLE)])
    assert result.exit_code != 0
    assert "bộ nhớ của cổng thông tin" in result.output
    assert ImportBatch.objects.count() == 0


def test_cli_imports_prints_the_report_and_purges(runner, app, monkeypatch, tmp_path, small):
    monkeypatch.setitem(app.config, "EMBEDDED", False)  # as with MONGODB_URI set
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(DEFAULT_MAPPING_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    result = runner.invoke(
        args=["legacy", "import", str(small), "--mapping", str(mapping), "--user", "admin"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["documents"]["imported"] == 40 and report["status"] == "done"
    batch = ImportBatch.objects.get()
    assert batch.mapping_name == "mapping.yaml" and batch.started_by_name == "Quản trị Hệ thống"
    again = runner.invoke(args=["legacy", "report", str(batch.pk)])
    assert json.loads(again.stdout)["history"]["imported"] == 80
    purged = runner.invoke(args=["legacy", "purge", str(batch.pk), "--yes"])
    assert purged.exit_code == 0 and json.loads(purged.stdout) == {"documents": 40, "files": 10}
    bad = runner.invoke(
        args=["legacy", "import", str(SAMPLE), "--mapping", str(SAMPLE / "manifest.json")]
    )
    assert bad.exit_code != 0 and "Ánh xạ cột không hợp lệ" in bad.output
