"""Attachment files: stream, hash, classify (missing, empty, mismatched, damaged, encrypted)."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field

from .source import ExportSource
from .text import remove_control_chars, to_nfc

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_TEXT_CHARS = 1_000_000
PDFTOTEXT_TIMEOUT = 60.0

OK = "ok"
MISSING = "missing"
UNREADABLE = "unreadable"
EMPTY = "empty"
SHA_MISMATCH = "sha_mismatch"
SIZE_MISMATCH = "size_mismatch"
ENCRYPTED_PDF = "encrypted_pdf"
DAMAGED_PDF = "damaged_pdf"
# Most serious first: the first flag found in this order becomes the status.
SEVERITY = (MISSING, UNREADABLE, EMPTY, SHA_MISMATCH, SIZE_MISMATCH, ENCRYPTED_PDF, DAMAGED_PDF)
RESTRICTED_PDF = "restricted_pdf"  # a note: encrypted with an owner password only, readable

_ENCRYPT_MARK = b"/Encrypt"


@dataclass(slots=True)
class PdfText:
    """Text extracted from a PDF; ``error`` is None, ``"encrypted"`` or ``"damaged"``."""

    text: str = ""
    truncated: bool = False
    error: str | None = None
    detail: str = ""


@dataclass(slots=True, frozen=True)
class TextOptions:
    """How to extract text: longest text kept, pdftotext timeout, engine."""

    max_chars: int = MAX_TEXT_CHARS
    timeout: float = PDFTOTEXT_TIMEOUT
    engine: str = "auto"


@dataclass(slots=True)
class FileCheck:
    """The outcome of reading one attachment.

    ``status`` is ``ok`` or the most serious flag; ``flags`` lists every flaw, ``reasons``
    their Vietnamese explanations; ``notes`` are facts that are not flaws (restricted_pdf).
    """

    status: str
    member: str | None = None
    size: int | None = None
    sha256: str | None = None
    is_pdf: bool = False
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    text: str = ""
    text_truncated: bool = False
    #: Applies the PDF text a TextWorker is extracting; ``settle`` waits for it.
    pending: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def settle(self) -> FileCheck:
        """Wait for the text extraction handed to a TextWorker (if any); return self."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending()
        return self

    @property
    def reason(self) -> str:
        """Return every flaw's reason, joined."""
        return "; ".join(self.reasons)

    @property
    def flawed(self) -> bool:
        """Tell whether the file exists but is flagged (kept as evidence)."""
        return self.status not in (OK, MISSING)

    def flag(self, kind: str, reason: str) -> None:
        """Record a flaw and make the most serious one the status."""
        if kind not in self.flags:
            self.flags.append(kind)
            self.reasons.append(reason)
        self.status = next(k for k in SEVERITY if k in self.flags)


def resolve_attachment(source: ExportSource, path: str, files_dir: str = "files") -> str | None:
    """Find an attachment's member: the path as written, else under ``files_dir``."""
    member = source.resolve(path)
    if member is None and files_dir and not path.replace("\\", "/").startswith(f"{files_dir}/"):
        member = source.resolve(f"{files_dir}/{path}")
    return member


def inspect_attachment(
    source: ExportSource,
    path: str,
    *,
    expected_size: int | None = None,
    expected_sha256: str = "",
    files_dir: str = "files",
    sink: Callable[[bytes], object] | None = None,
    extract_text: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
    timeout: float = PDFTOTEXT_TIMEOUT,
    engine: str = "auto",
    texts: TextWorker | None = None,
) -> FileCheck:
    """Stream one attachment in chunks: size, sha256, flags, and PDF text.

    Every chunk is also passed to ``sink`` (e.g. a GridFS file's ``write``) so the bytes are
    read once. PDFs are copied to a temporary file for text extraction; nothing is held
    whole. With ``texts`` the text is extracted in that worker process while the caller goes
    on: the check is complete only after ``check.settle()``.
    """
    member = resolve_attachment(source, path, files_dir)
    if member is None:
        check = FileCheck(MISSING)
        check.flag(MISSING, f"Không tìm thấy tệp '{path}' trong bản xuất.")
        return check
    check = FileCheck(OK, member=member)
    digest = hashlib.sha256()
    size = 0
    head = b""
    tail = b""
    encrypt_mark = False
    temp = None
    handed_over = False  # the temporary copy belongs to the text worker
    try:
        with source.open(member) as stream:
            while chunk := stream.read(CHUNK):
                if not head:
                    head = chunk[:1024]
                    check.is_pdf = b"%PDF-" in head or member.lower().endswith(".pdf")
                    if check.is_pdf:
                        temp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
                            prefix="legacy-", suffix=".pdf", delete=False,
                            dir=texts.dir if texts is not None else None,
                        )  # fmt: skip
                digest.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink(chunk)
                if temp is not None:
                    temp.write(chunk)
                    window = tail[-16:] + chunk
                    encrypt_mark = encrypt_mark or _ENCRYPT_MARK in window
                tail = (tail + chunk)[-2048:]
        check.size = size
        check.sha256 = digest.hexdigest()
        _check_bytes(check, expected_size, expected_sha256, head)
        if temp is not None and size:
            temp.close()
            options = TextOptions(max_text_chars, timeout, engine)
            handed_over = _check_pdf(
                check, temp.name, head, tail, encrypt_mark, extract_text, options, texts
            )
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        check.size, check.sha256 = size, None
        check.flag(UNREADABLE, f"Không đọc hết được tệp: {exc}.")
    finally:
        if temp is not None and not handed_over:
            temp.close()
            os.unlink(temp.name)
    return check


def _check_bytes(check: FileCheck, size: int | None, sha256: str, head: bytes) -> None:
    if check.size == 0:
        check.flag(EMPTY, "Tệp rỗng (0 byte).")
        return
    if sha256 and sha256.lower() != check.sha256:
        check.flag(
            SHA_MISMATCH,
            f"Mã sha256 không khớp: bản xuất ghi {sha256[:12]}…, tệp thực tế "
            f"{(check.sha256 or '')[:12]}….",
        )
    if not sha256 and size is not None and size != check.size:
        check.flag(SIZE_MISMATCH, f"Kích thước không khớp: ghi {size} byte, thực tế {check.size}.")


def _check_pdf(
    check: FileCheck,
    path: str,
    head: bytes,
    tail: bytes,
    encrypt_mark: bool,
    extract_text: bool,
    options: TextOptions,
    texts: TextWorker | None,
) -> bool:
    """Check a PDF's structure and read its text; return True if ``texts`` took the file."""
    if b"%PDF-" not in head:
        check.flag(DAMAGED_PDF, "Tệp .pdf không có tiêu đề %PDF: không phải PDF hoặc đã hỏng.")
        return False
    if b"%%EOF" not in tail:
        check.flag(DAMAGED_PDF, "PDF thiếu dấu kết thúc %%EOF: tệp có thể bị cắt cụt.")
    if not extract_text:
        if encrypt_mark:
            _probe_encryption(check, path)
        return False
    if texts is None:
        _apply_text(check, _extract(path, options), encrypt_mark)
        return False
    result = texts.submit(path, options)
    check.pending = lambda: _apply_text(check, result(), encrypt_mark)
    return True


def _extract(path: str, options: TextOptions) -> PdfText:
    return extract_pdf_text(
        path, max_chars=options.max_chars, timeout=options.timeout, engine=options.engine
    )


def _extract_and_remove(path: str, options: TextOptions) -> PdfText:
    """Extract a temporary copy's text, then delete the copy (runs in the text worker)."""
    try:
        return _extract(path, options)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


#: Why a file is damaged when reading it alone kills the text worker (a pdfium crash).
READER_CRASHED = "trình đọc PDF dừng đột ngột khi đọc tệp này."


class TextWorker:
    """A process that extracts PDF text while the importer streams the next files.

    Extraction is most of an attachment's cost, and pdfium's many short calls keep
    reclaiming the GIL: a thread gains almost nothing, a process takes the other core. In
    a process, a PDF that crashes pdfium kills the worker, not the import: the files that
    were in flight are read again one at a time, each in a process of its own, and the one
    that crashes it again is flagged damaged.

    Started on the first PDF; ``close`` waits for what was submitted (each job deletes its
    temporary copy) and removes ``dir``, where the copies go: files are created there about
    three times faster than in a shared /tmp holding a thousand entries. ``job`` is the
    function run in the worker (tests swap it).
    """

    def __init__(self, job: Callable[[str, TextOptions], PdfText] | None = None) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self.job = job or _extract_and_remove
        self.dir = tempfile.mkdtemp(prefix="legacy-text-")

    def submit(self, path: str, options: TextOptions) -> Callable[[], PdfText]:
        """Extract ``path``'s text, then delete the file; return what waits for the text."""
        pool = self._pool or self._start()
        try:
            future = pool.submit(self.job, path, options)
        except BrokenProcessPool:  # a file before this one killed the worker
            self._drop(pool)
            pool = self._start()
            future = pool.submit(self.job, path, options)
        return lambda: self._result(pool, future, path, options)

    def _start(self) -> ProcessPoolExecutor:
        self._pool = _one_process()
        return self._pool

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        pool.shutdown(wait=False)
        if self._pool is pool:
            self._pool = None

    def _result(
        self, pool: ProcessPoolExecutor, future: Future[PdfText], path: str, options: TextOptions
    ) -> PdfText:
        try:
            return future.result()
        except BrokenProcessPool:
            self._drop(pool)
        log.warning("PDF text worker died; reading the files it had again, one at a time")
        with _one_process() as alone:
            try:
                return alone.submit(self.job, path, options).result()
            except BrokenProcessPool:
                with suppress(FileNotFoundError):
                    os.unlink(path)
                return PdfText(error="damaged", detail=READER_CRASHED)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TextWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _one_process() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))


def _apply_text(check: FileCheck, result: PdfText, encrypt_mark: bool) -> None:
    check.text, check.text_truncated = result.text, result.truncated
    if result.error == "encrypted":
        check.flag(ENCRYPTED_PDF, "PDF được mã hóa bằng mật khẩu: không đọc được nội dung.")
    elif result.error == "damaged":
        check.flag(DAMAGED_PDF, f"PDF hỏng, không đọc được: {result.detail}")
    elif encrypt_mark:
        check.notes.append(RESTRICTED_PDF)


def _probe_encryption(check: FileCheck, path: str) -> None:
    import pypdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(path)
            if not reader.is_encrypted:
                return
            if reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                check.flag(ENCRYPTED_PDF, "PDF được mã hóa bằng mật khẩu: không đọc được nội dung.")
            else:
                check.notes.append(RESTRICTED_PDF)
    except Exception as exc:  # pypdf raises many types on broken files
        check.flag(DAMAGED_PDF, f"PDF hỏng, không đọc được: {type(exc).__name__}.")


def pdf_engine(engine: str = "auto") -> str:
    """Resolve ``auto`` to the fastest engine installed: pdfium, pdftotext, then pypdf."""
    if engine != "auto":
        return engine
    if importlib.util.find_spec("pypdfium2") is not None:
        return "pdfium"
    return "pdftotext" if shutil.which("pdftotext") else "pypdf"


def extract_pdf_text(
    path: str,
    *,
    max_chars: int = MAX_TEXT_CHARS,
    timeout: float = PDFTOTEXT_TIMEOUT,
    engine: str = "auto",
) -> PdfText:
    """Extract a PDF file's text with pdfium (in-process), poppler's pdftotext or pypdf.

    pdfium is about 5x faster than starting pdftotext per file but has no timeout and
    runs one call at a time (it is not thread-safe); pdftotext runs in a subprocess with
    ``timeout``. ``auto`` picks the first one installed.
    """
    engine = pdf_engine(engine)
    if engine == "pdfium":
        return _pdfium_text(path, max_chars)
    if engine == "pypdf":
        return _pypdf_text(path, max_chars)
    binary = shutil.which("pdftotext")
    if binary is None:
        return _pypdf_text(path, max_chars)
    with tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [binary, "-q", "-enc", "UTF-8", path, "-"],
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return PdfText(error="damaged", detail=f"pdftotext quá {timeout:g} giây.")
        if done.returncode != 0:
            detail = _pdftotext_error(binary, path, timeout)
            kind = "encrypted" if "password" in detail.lower() else "damaged"
            return PdfText(error=kind, detail=detail)
        out.seek(0)
        data = out.read(max_chars * 4 + 4)
        more = bool(out.read(1))
    return _finish_text(data.decode("utf-8", errors="replace"), max_chars, more)


_PDFIUM_LOCK = threading.Lock()
_PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD


def _pdfium_text(path: str, max_chars: int) -> PdfText:
    import pypdfium2

    parts: list[str] = []
    length = 0
    with _PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(path)
        except pypdfium2.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _PDFIUM_PASSWORD_ERROR:
                return PdfText(error="encrypted", detail="cần mật khẩu")
            return PdfText(error="damaged", detail=str(exc)[:300])
        try:
            for index in range(len(document)):
                page = document[index]
                textpage = page.get_textpage()
                parts.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
                length += len(parts[-1])
                if length > max_chars:
                    break
        except pypdfium2.PdfiumError as exc:
            return PdfText(error="damaged", detail=str(exc)[:300])
        finally:
            document.close()
    return _finish_text("\n\n".join(parts), max_chars, False)


def _pdftotext_error(binary: str, path: str, timeout: float) -> str:
    """Rerun pdftotext without -q only to learn why it failed (rare path)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [binary, "-l", "1", "-enc", "UTF-8", path, os.devnull],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"pdftotext quá {timeout:g} giây."
    lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    return (lines[-1] if lines else f"pdftotext trả mã {done.returncode}")[:300]


def _pypdf_text(path: str, max_chars: int) -> PdfText:
    import pypdf

    parts: list[str] = []
    length = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(path)
            if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                return PdfText(error="encrypted", detail="cần mật khẩu")
            for page in reader.pages:
                parts.append(page.extract_text() or "")
                length += len(parts[-1])
                if length > max_chars:
                    break
    except Exception as exc:  # pypdf raises many types on broken files
        return PdfText(error="damaged", detail=f"{type(exc).__name__}: {exc}"[:300])
    return _finish_text("\n\n".join(parts), max_chars, False)


def _finish_text(text: str, max_chars: int, more: bool) -> PdfText:
    text = to_nfc(remove_control_chars(text.replace("\f", "\n\n"))).strip()
    truncated = more or len(text) > max_chars
    return PdfText(text=text[:max_chars], truncated=truncated)
