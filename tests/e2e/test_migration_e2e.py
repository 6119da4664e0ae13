"""End to end in Chromium: the admin imports the legacy sample from the screen, watches the
progress bar finish, opens a migrated document and cannot edit or process it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from models.document import Document
from models.legacy_import import ImportBatch
from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "legacy-sample"


@pytest.fixture
def import_worker(app: Flask) -> Iterator[threading.Event]:
    """Work the `import` queue in a thread (as the portal's in-process worker does)."""
    from rq.serializers import JSONSerializer

    from jobs import get_queue
    from jobs.worker import ThreadWorker

    start, stop = threading.Event(), threading.Event()

    def work() -> None:
        start.wait()
        with app.app_context():
            queue = get_queue("import")
            while not stop.is_set():
                worker = ThreadWorker([queue], connection=queue.connection,
                                      serializer=JSONSerializer)  # fmt: skip
                worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
                time.sleep(0.2)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield start
    stop.set()
    start.set()
    thread.join(timeout=30)


def test_admin_imports_the_sample_and_migrated_documents_are_read_only(
    page, app, monkeypatch, import_worker
):
    monkeypatch.setitem(app.config, "LEGACY_IMPORT_ROOTS", [str(SAMPLE.parent)])
    login(page, "admin")
    page.get_by_role("link", name="Hệ thống", exact=True).click()
    page.get_by_role("link", name="Chuyển đổi dữ liệu").click()
    page.locator("#export-candidates a", has_text=str(SAMPLE)).click()
    assert page.locator("#path").input_value() == str(SAMPLE)
    page.click("#start-import")
    page.get_by_text("Đã bắt đầu chuyển đổi.").wait_for()
    bar = page.locator("#progress-bar")
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.locator("#batch-status").inner_text() == "Đang chờ"

    import_worker.set()  # the worker picks the job up; the bar follows the import live
    page.wait_for_function(
        "document.getElementById('progress-bar').getAttribute('aria-valuenow') === '100'",
        timeout=120_000,
    )
    page.locator("#report-documents").wait_for(timeout=30_000)  # the page reloads when done
    assert page.locator("#batch-status").inner_text() == "Hoàn thành"
    assert page.locator("#rows-done").inner_text() == str(300 + 58 + 584)
    report = page.locator("#report-documents").inner_text()
    assert "Đã nhập\t300" in report and "Bị loại\t0" in report
    assert "Đã lưu\t58" in page.locator("#report-attachments").inner_text()
    assert "Đã nhập\t584" in page.locator("#report-history").inner_text()
    batch = ImportBatch.objects.get()
    assert batch.status == "done"

    # A migrated document: marked, with its legacy id, files and old trace; no way to change it.
    page.locator("#imported-documents a").first.click()
    page.locator("#migrated-notice").wait_for()
    doc = Document.objects.get(pk=page.url.rstrip("/").rsplit("/", 1)[-1])
    assert doc.migrated and doc.import_batch_id == str(batch.pk)
    notice = page.locator("#migrated-notice").inner_text()
    assert f"Số iOffice: {doc.legacy_id}" in notice and "không xử lý hay sửa được" in notice
    assert page.locator(".badge-migrated").first.inner_text() == "Dữ liệu chuyển đổi"
    assert page.locator(".transition-form").count() == 0
    assert page.get_by_role("link", name="Sửa thông tin").count() == 0
    assert page.locator("#history li").count() == len(doc.history)
    # Even by typing the edit address, the save is refused and nothing changes.
    page.goto(f"/documents/{doc.pk}/edit")
    page.fill("#subject", "Sửa trích yếu văn bản cũ")
    page.click("#document-submit")
    page.get_by_text("chỉ để tra cứu, không sửa được").wait_for()
    doc.reload()
    assert doc.subject != "Sửa trích yếu văn bản cũ" and doc.version == 1
