"""Convert a DOCX/DOC/XLSX/XLS revision to PDF with LibreOffice headless (queue `conversion`)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from flask import current_app
from rq import get_current_job
from rq.job import Job

from jobs import enqueue, report_progress
from models.document import Document, HistoryEntry
from workflows.errors import DomainError, NotFound
from workflows.storage import (
    CONVERTIBLE_TYPES,
    EXTENSIONS,
    PDF,
    PDF_TYPES,
    TYPE_LABELS,
    FileRejected,
    append_revision,
    discard_on_error,
    local_copy,
    store_upload,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 120  # config CONVERSION_TIMEOUT_SECONDS overrides


class ConversionFailed(DomainError):
    code = "conversion_failed"
    status = 422
    message = "Không chuyển được tệp sang PDF. Vui lòng kiểm tra tệp rồi thử lại."


def conversion_timeout() -> int:
    """Return the seconds one LibreOffice run may take."""
    return int(current_app.config.get("CONVERSION_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def soffice_binary() -> str:
    """Return the LibreOffice executable (config SOFFICE_BINARY, else found on PATH)."""
    binary = (
        current_app.config.get("SOFFICE_BINARY")
        or shutil.which("soffice")
        or shutil.which("libreoffice")
    )
    if not binary:
        raise ConversionFailed("Máy chủ chưa cài LibreOffice nên không chuyển được sang PDF.")
    return str(binary)


def run_soffice(source: str, outdir: str, timeout: int) -> str:
    """Convert the file at `source` into `outdir` and return the PDF's path.

    Each run gets a private LibreOffice profile, so parallel runs never share (and lock) one,
    and its own process group, so a timeout kills every LibreOffice process it started.
    """
    profile = tempfile.mkdtemp(prefix="vanthu-lo-profile-")
    cmd = [
        soffice_binary(),
        f"-env:UserInstallation={Path(profile).as_uri()}",
        "--headless",
        "--invisible",
        "--norestore",
        "--nologo",
        "--nodefault",
        "--nolockcheck",
        "--convert-to",
        "pdf",
        "--outdir",
        outdir,
        source,
    ]
    env = {**os.environ, "HOME": profile}
    proc = subprocess.Popen(  # noqa: S603 (fixed argument list, no shell)
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc.pid)
        proc.communicate()
        raise ConversionFailed(
            f"Chuyển sang PDF quá {timeout} giây nên đã dừng. Tệp có thể quá lớn hoặc bị hỏng."
        ) from exc
    finally:
        _kill_group(proc.pid)  # leftovers of a run that exited (none normally)
        shutil.rmtree(profile, ignore_errors=True)
    pdf = os.path.join(outdir, Path(source).stem + ".pdf")
    if proc.returncode != 0 or not os.path.isfile(pdf):
        # LibreOffice exits 0 even when it cannot load the file: the missing PDF tells.
        log.warning(
            "libreoffice failed rc=%s stderr=%s", proc.returncode, stderr.decode(errors="replace")
        )
        raise ConversionFailed(
            "LibreOffice không đọc được tệp nên không chuyển được sang PDF. "
            "Tệp có thể bị hỏng; vui lòng mở và lưu lại tệp rồi tải lên lại."
        )
    return pdf


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _fail(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["error"] = message
        job.save_meta()


def convert_to_pdf(document_id: str, rev: int) -> dict[str, int]:
    """Convert revision `rev` of a document to PDF and append it as a `converted` revision."""
    try:
        return _convert(document_id, rev)
    except DomainError as exc:
        log.info("conversion failed doc=%s rev=%s: %s", document_id, rev, exc.message)
        _fail(exc.message)
        raise
    except Exception:
        log.exception("conversion crashed doc=%s rev=%s", document_id, rev)
        _fail(ConversionFailed.message)
        raise


def _convert(document_id: str, rev: int) -> dict[str, int]:
    doc = Document.objects(pk=document_id).only("revisions").first()
    if doc is None:
        raise NotFound("Không tìm thấy văn bản cần chuyển sang PDF.")
    source = doc.revision(rev)
    if source is None:
        raise NotFound(f"Văn bản không có bản số {rev}.")
    done = next((r for r in doc.revisions if r.kind == "converted" and r.source_rev == rev), None)
    if done is not None:  # a retried job: the work is already there
        return {"rev": done.rev}
    if source.mime == PDF:
        return {"rev": rev}
    if source.mime not in CONVERTIBLE_TYPES:
        label = TYPE_LABELS.get(source.mime, source.mime)
        raise ConversionFailed(f"Tệp «{source.filename}» ({label}) không chuyển sang PDF được.")
    job = get_current_job()
    owner_id = job.meta.get("owner_id") if job is not None else None
    report_progress(0, 3)
    with tempfile.TemporaryDirectory(prefix="vanthu-convert-") as outdir:
        with local_copy(source.file_id, EXTENSIONS[source.mime]) as path:
            report_progress(1, 3)
            pdf_path = run_soffice(path, outdir, conversion_timeout())
        report_progress(2, 3)
        pdf_name = os.path.splitext(source.filename)[0] + ".pdf"
        with open(pdf_path, "rb") as fh:
            try:
                stored = store_upload(fh, pdf_name, allowed=PDF_TYPES, uploaded_by=owner_id)
            except FileRejected as exc:
                raise ConversionFailed(
                    f"Tệp PDF tạo từ «{source.filename}» không dùng được: {exc.message}"
                ) from exc
    with discard_on_error(stored):
        revision = append_revision(
            document_id,
            stored,
            kind="converted",
            source_rev=rev,
            note=f"Chuyển sang PDF từ bản {rev}",
            history=HistoryEntry(
                actor_name="Hệ thống",
                action="converted",
                label=f"Chuyển bản {rev} sang PDF (bản mới: tệp PDF)",
                detail={"source_rev": rev, "requested_by": owner_id},
            ),
        )
    report_progress(3, 3)
    log.info("converted doc=%s rev=%s -> rev=%s", document_id, rev, revision.rev)
    return {"rev": revision.rev}


def enqueue_conversion(doc: Document, rev: int, owner_id: str | None) -> Job:
    """Queue the conversion of revision `rev` of `doc`; a second call returns the same job."""
    return enqueue(
        convert_to_pdf,
        str(doc.pk),
        rev,
        queue="conversion",
        job_id=f"convert-{doc.pk}-{rev}",
        owner_id=owner_id,
        description=f"Chuyển bản {rev} của văn bản {doc.pk} sang PDF",
        timeout=conversion_timeout() + 120,
    )
