import io
import os
import subprocess
import time

import pytest
from pypdf import PdfReader

from jobs import conversion, fetch_job, job_to_api
from jobs.conversion import ConversionFailed, convert_to_pdf, enqueue_conversion, run_soffice
from models.document import Document
from tests.fixtures.files import samples
from workflows.errors import NotFound
from workflows.storage import (
    DOCX,
    PDF,
    add_revision,
    local_copy,
    orphan_files,
    read_file,
    store_upload,
)


def draft_with(data: bytes, name: str = "Dự thảo công văn.docx") -> Document:
    doc = Document(direction="outgoing", subject="V/v báo cáo kết quả thực hiện")
    add_revision(doc, store_upload(io.BytesIO(data), name), kind="upload")
    return doc.save()


def file_count() -> int:
    from mongoengine.connection import get_db

    return get_db()["fs.files"].count_documents({})


def test_docx_becomes_a_pdf_revision_through_libreoffice(users, run_jobs, monkeypatch):
    owner = str(users["chuyenvien"].pk)
    doc = draft_with(samples.docx_bytes())
    real_run = conversion.run_soffice

    def run_while_someone_edits(source, outdir, timeout):
        # A user edits the document and adds an attachment while LibreOffice works.
        attachment = store_upload(io.BytesIO(samples.xlsx_bytes()), "Phụ lục.xlsx")
        Document.objects(pk=doc.pk).update_one(
            set__subject="V/v báo cáo (đã sửa)", push__attachments=attachment
        )
        return real_run(source, outdir, timeout)

    monkeypatch.setattr(conversion, "run_soffice", run_while_someone_edits)
    job = enqueue_conversion(doc, 1, owner)
    assert job.id == f"convert-{doc.pk}-1"
    assert enqueue_conversion(doc, 1, owner).id == job.id  # a double click: one job
    started = time.monotonic()
    assert run_jobs(("conversion",))
    elapsed = time.monotonic() - started
    finished = fetch_job(job.id)
    assert finished is not None
    assert job_to_api(finished) == {
        "id": job.id,
        "status": "finished",
        "progress": {"done": 3, "total": 3},
        "result": {"rev": 2},
    }, job.meta
    doc.reload()
    assert doc.subject == "V/v báo cáo (đã sửa)" and len(doc.attachments) == 1
    assert [(r.rev, r.kind, r.source_rev, r.mime) for r in doc.revisions] == [
        (1, "upload", None, DOCX),
        (2, "converted", 1, PDF),
    ]
    pdf = doc.revisions[1]
    assert pdf.filename == "Dự thảo công văn.pdf" and pdf.uploaded_by == owner
    assert doc.current_pdf is not None and doc.current_pdf.rev == 2
    assert doc.history[-1].action == "converted"
    assert len(PdfReader(io.BytesIO(read_file(pdf.file_id))).pages) == 1
    with local_copy(pdf.file_id, ".pdf") as path:
        text = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True, check=True
        ).stdout.decode()
    assert samples.VIETNAMESE_SENTENCE in " ".join(text.split())
    assert orphan_files() == []
    # A retried job finds its work done and adds nothing.
    assert convert_to_pdf(str(doc.pk), 1) == {"rev": 2}
    assert len(Document.objects.get(pk=doc.pk).revisions) == 2
    print(f"libreoffice conversion job: {elapsed:.1f}s")


def test_broken_docx_fails_with_a_message_and_leaves_nothing(users, run_jobs):
    doc = draft_with(samples.docx_bytes(document_xml=b"\x00<w:document> h\xe1\xbb\x8fng"))
    job = enqueue_conversion(doc, 1, str(users["chuyenvien"].pk))
    run_jobs(("conversion",))
    failed = fetch_job(job.id)
    assert failed is not None
    body = job_to_api(failed)
    assert body["status"] == "failed"
    assert body["error"].startswith(
        "LibreOffice không đọc được tệp nên không chuyển được sang PDF."
    )
    doc.reload()
    assert [r.rev for r in doc.revisions] == [1]
    assert file_count() == 1 and orphan_files() == []


def fake_soffice(output: bytes | None):
    def run(source, outdir, timeout):
        path = os.path.join(outdir, "source.pdf")
        with open(path, "wb") as fh:
            fh.write(output or b"")
        return path

    return run


def test_an_unusable_pdf_from_libreoffice_is_not_stored(monkeypatch):
    doc = draft_with(samples.docx_bytes())
    monkeypatch.setattr(conversion, "run_soffice", fake_soffice(samples.truncated_pdf_bytes()))
    with pytest.raises(ConversionFailed) as raised:
        convert_to_pdf(str(doc.pk), 1)
    assert "Tệp PDF tạo từ «Dự thảo công văn.docx» không dùng được" in raised.value.message
    assert file_count() == 1 and orphan_files() == []


def test_a_document_deleted_during_conversion_leaves_no_file(monkeypatch):
    doc = draft_with(samples.docx_bytes())
    real = fake_soffice(samples.pdf_bytes())

    def delete_then_convert(source, outdir, timeout):
        Document.objects(pk=doc.pk).delete()
        return real(source, outdir, timeout)

    monkeypatch.setattr(conversion, "run_soffice", delete_then_convert)
    with pytest.raises(NotFound, match="Không tìm thấy văn bản"):
        convert_to_pdf(str(doc.pk), 1)
    assert orphan_files() != []  # the draft's own file, whose document is gone
    assert file_count() == 1  # but no PDF was left behind


def test_what_is_not_convertible(monkeypatch):
    doc = draft_with(samples.pdf_bytes(), "đã là pdf.pdf")
    assert convert_to_pdf(str(doc.pk), 1) == {"rev": 1}
    image = draft_with(samples.image_bytes("PNG"), "ảnh.png")
    with pytest.raises(ConversionFailed, match=r"Tệp «ảnh.png» \(PNG\) không chuyển sang PDF"):
        convert_to_pdf(str(image.pk), 1)
    with pytest.raises(NotFound, match="Văn bản không có bản số 7"):
        convert_to_pdf(str(doc.pk), 7)


def test_a_hanging_libreoffice_is_killed_with_its_children(app, tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    script = tmp_path / "soffice"
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pids}\nsleep 60\n")
    script.chmod(0o755)
    monkeypatch.setitem(app.config, "SOFFICE_BINARY", str(script))
    source = tmp_path / "a.docx"
    source.write_bytes(samples.docx_bytes())
    started = time.monotonic()
    with pytest.raises(ConversionFailed, match="quá 1 giây"):
        run_soffice(str(source), str(tmp_path), timeout=1)
    assert time.monotonic() - started < 10
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
