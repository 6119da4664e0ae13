"""End to end in Chromium: a director batch-signs with a PIN, watches progress, verifies a PDF."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from models.document import Document
from tests.e2e.conftest import login
from tests.workflows import test_signature as shared
from workflows import storage

pytestmark = pytest.mark.e2e

# fixtures shared with the workflow tests
awaiting, director_pdf, identities = shared.awaiting, shared.director_pdf, shared.identities
fast_pin_hash, sealed_flow, sig_pki = shared.fast_pin_hash, shared.sealed_flow, shared.sig_pki


def _work(app: Any) -> None:
    """Work the signing queue once, as the portal's thread worker does (no signal handlers)."""
    from rq.serializers import JSONSerializer

    from jobs import get_queue
    from jobs.worker import ThreadWorker

    with app.app_context():
        queue = get_queue("signing")
        ThreadWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(
            burst=True
        )


def test_director_batch_signs_and_verifies_in_the_browser(
    app, page, awaiting, identities, tmp_path
):
    docs = [awaiting("signing") for _ in range(2)]
    login(page, "giamdoc")
    page.goto("/signatures/")
    assert page.get_by_text("Văn bản chờ tôi ký").is_visible()
    page.check("#select-all")
    page.fill("#batch-code", "000000")
    page.click("#batch-submit")
    page.get_by_text("Mã OTP hoặc mã PIN ký số không đúng.").wait_for()
    page.check("#select-all")
    page.fill("#batch-code", shared.PIN)
    page.click("#batch-submit")
    page.wait_for_url("**/signatures/jobs/**")
    assert page.locator("#sign-count").inner_text() in ("0/0", "0/2")
    # the portal's worker, in its own thread: Playwright's loop runs in this one
    worker = threading.Thread(target=_work, args=(app,))
    worker.start()
    worker.join(timeout=120)
    page.locator("#sign-status[data-status=finished]").wait_for()
    assert page.locator("#sign-count").inner_text() == "2/2"
    assert "2 văn bản đã ký" in page.locator("#sign-status").inner_text()
    assert {Document.objects.get(pk=d.pk).state for d in docs} == {"sealing"}

    signed = tmp_path / "quyet-dinh.pdf"
    docs[0].reload()
    signed.write_bytes(storage.read_file(docs[0].current_pdf.file_id))
    page.goto("/signatures/verify/")
    page.set_input_files("#file", str(signed))
    page.click("#verify-submit")
    row = page.locator("#signature-panel tbody tr")
    row.first.wait_for()
    assert row.count() == 1
    assert "Nguyễn Văn An" in row.inner_text()
    assert "Chữ ký hợp lệ và tin cậy." in row.inner_text()
