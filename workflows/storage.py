"""Files in GridFS: uploads checked by their content, document revisions, cleanup.

An upload is spooled to an anonymous temporary file (hashed and measured on the way, never
held in memory), checked there, and only written to GridFS once accepted: a rejected file
never reaches the database, and a failed GridFS write is aborted, so nothing is orphaned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import struct
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO

import filetype
import gridfs
from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app
from gridfs.grid_file import GridOut
from mongoengine.connection import get_db

from models.audit import utcnow
from models.document import Document, FileRevision, HistoryEntry, StoredFile
from workflows.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
JPEG = "image/jpeg"
PNG = "image/png"
TIFF = "image/tiff"
UNKNOWN = "application/octet-stream"

# Labels in the order messages list them, and the extension each type is saved with.
TYPE_LABELS = {
    PDF: "PDF",
    DOCX: "DOCX",
    DOC: "DOC",
    XLSX: "XLSX",
    XLS: "XLS",
    JPEG: "JPEG",
    PNG: "PNG",
    TIFF: "TIFF",
}
EXTENSIONS = {
    PDF: ".pdf",
    DOCX: ".docx",
    DOC: ".doc",
    XLSX: ".xlsx",
    XLS: ".xls",
    JPEG: ".jpg",
    PNG: ".png",
    TIFF: ".tif",
}
PDF_TYPES = frozenset({PDF})
IMAGE_TYPES = frozenset({JPEG, PNG, TIFF})
CONVERTIBLE_TYPES = frozenset({DOCX, DOC, XLSX, XLS})  # LibreOffice turns these into PDF
DRAFT_TYPES = frozenset({PDF, DOCX, DOC})  # the main file of an outgoing draft
DOCUMENT_TYPES = PDF_TYPES | CONVERTIBLE_TYPES | IMAGE_TYPES  # anything a document may hold

# A multiple of GridFS's 255 KiB chunk, so GridIn writes whole chunks without re-buffering.
COPY_CHUNK = 4 * 255 * 1024
BUCKETS = ("fs", "user_images")  # GridFS collections this app writes (user_images: User)

_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
_OOXML_MACRO = {
    "application/vnd.ms-word.document.macroEnabled.main+xml": "DOCM (có macro)",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": "XLSM (có macro)",
}
_OLE_STREAMS = {"WordDocument": DOC, "Workbook": XLS, "Book": XLS, "EncryptedPackage": None}
_ENCRYPTED_OFFICE = "x-encrypted-office"  # internal results of _sniff
_DAMAGED_ZIP = "x-damaged-zip"
_APPEND_ATTEMPTS = 5
_PDF_TAIL = 64 * 1024
_FORBIDDEN_CHARS = re.compile(r'[<>:"|?*]')


# Errors ------------------------------------------------------------------------------------


class FileRejected(ValidationFailed):
    """An uploaded file that cannot be stored; the message names the file."""

    code = "file_rejected"
    message = "Tệp tải lên không hợp lệ."


class EmptyFile(FileRejected):
    code = "file_empty"


class FileTooLarge(FileRejected):
    code = "file_too_large"
    status = 413


class ForbiddenFileType(FileRejected):
    code = "file_type_forbidden"
    status = 415


class DamagedFile(FileRejected):
    code = "file_damaged"


class EncryptedFile(FileRejected):
    code = "file_encrypted"


_FLAGS: dict[type[FileRejected], str] = {
    EmptyFile: "empty",
    DamagedFile: "damaged",
    EncryptedFile: "encrypted",
}


# Names and sizes ---------------------------------------------------------------------------


def clean_filename(name: str | None, mime: str | None = None) -> str:
    """Return `name` without path, control characters or edge dots, NFC, at most 255 chars."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    # Category C: control and format characters (bidi overrides that disguise "exe.pdf").
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = _FORBIDDEN_CHARS.sub("_", text)
    text = " ".join(text.split()).strip(" .")
    if not text:
        text = "tep-tai-len" + EXTENSIONS.get(mime or "", "")
    if len(text) > 255:
        stem, ext = os.path.splitext(text)
        ext = ext if len(ext) <= 16 else ""
        text = stem[: 255 - len(ext)].rstrip(" .") + ext
    return text


def format_size(size: int) -> str:
    """Return `size` in Vietnamese notation: "50 MB", "1,5 MB", "900 KB"."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            value = round(size / factor, 1)
            text = f"{value:.1f}".rstrip("0").rstrip(".").replace(".", ",")
            return f"{text} {unit}"
    return f"{size} byte"


def allowed_label(allowed: Iterable[str]) -> str:
    """Return the allowed types as users read them: "PDF/DOCX/JPEG"."""
    allowed = set(allowed)
    return "/".join(label for mime, label in TYPE_LABELS.items() if mime in allowed)


# Content detection -------------------------------------------------------------------------


def detect_mime(fh: IO[bytes]) -> str | None:
    """Return the MIME type of the open file `fh` from its bytes, or None when unknown."""
    mime = _sniff(fh)
    return None if mime in (_ENCRYPTED_OFFICE, _DAMAGED_ZIP) else mime


def _sniff(fh: IO[bytes]) -> str | None:
    fh.seek(0)
    head = fh.read(8192)
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(_OLE_MAGIC):
        return _ole_kind(fh)
    if head.startswith(b"PK\x03\x04"):
        return _ooxml_kind(fh)
    kind = filetype.image_match(head)
    if kind is not None and kind.mime in IMAGE_TYPES:
        return str(kind.mime)
    return None


def _describe_unknown(fh: IO[bytes]) -> str:
    """Return what an unaccepted file seems to be, for the message ("" if nothing known)."""
    fh.seek(0)
    head = fh.read(8192)
    if head.startswith(b"MZ"):
        return "tệp chương trình (EXE)"
    if head.startswith(b"PK\x03\x04"):
        return _ooxml_macro_label(fh) or "tệp nén"
    if head.startswith(_OLE_MAGIC):
        return "tệp Office không xác định"
    kind = filetype.guess(head)
    return f"tệp {kind.extension.upper()}" if kind is not None else ""


def _ole_kind(fh: IO[bytes]) -> str | None:
    """Return DOC or XLS for an OLE2 compound file by its stream names, else None.

    Directory entries are 128-byte records aligned on 128 bytes, the name first (UTF-16LE,
    NUL-terminated) and its byte length at offset 64: scan for them without a full parser.
    """
    needles = {n.encode("utf-16-le") + b"\0\0": n for n in _OLE_STREAMS}
    found: set[str] = set()
    fh.seek(0)
    while block := fh.read(1024 * 1024):  # a multiple of 128: records never straddle
        for needle, name in needles.items():
            pos = block.find(needle)
            while pos != -1:
                if pos % 128 == 0 and len(block) >= pos + 66:
                    (length,) = struct.unpack_from("<H", block, pos + 64)
                    if length == len(needle):
                        found.add(name)
                pos = block.find(needle, pos + 1)
    if "EncryptedPackage" in found:
        return _ENCRYPTED_OFFICE
    for name in ("WordDocument", "Workbook", "Book"):
        if name in found:
            return _OLE_STREAMS[name]
    return None


def _content_types(fh: IO[bytes]) -> tuple[dict[str, str], set[str]] | None:
    """Return ({part: content type}, member names) of an OOXML package, or None."""
    fh.seek(0)
    with zipfile.ZipFile(fh) as archive:
        names = set(archive.namelist())
        try:
            info = archive.getinfo("[Content_Types].xml")
        except KeyError:
            return None
        if info.file_size > 1024 * 1024:
            return None
        root = ET.fromstring(archive.read(info))  # noqa: S314 (small, size-checked)
    parts = {
        (el.get("PartName") or "").lstrip("/"): el.get("ContentType") or ""
        for el in root
        if el.tag.endswith("Override")
    }
    return parts, names


_ZIP_ERRORS = (zipfile.BadZipFile, ET.ParseError, OSError, EOFError, ValueError)


def _ooxml_kind(fh: IO[bytes]) -> str | None:
    """Return DOCX or XLSX for a zip whose declared main part is a document or a sheet."""
    try:
        package = _content_types(fh)
    except _ZIP_ERRORS:
        return _DAMAGED_ZIP
    if package is None:
        return None
    parts, names = package
    for part, content_type in parts.items():
        mime = _OOXML_MAIN.get(content_type)
        if mime is not None:
            prefix = "word/" if mime == DOCX else "xl/"
            return mime if part in names and part.startswith(prefix) else _DAMAGED_ZIP
    return None


def _ooxml_macro_label(fh: IO[bytes]) -> str:
    try:
        package = _content_types(fh)
    except _ZIP_ERRORS:
        return ""
    types = package[0].values() if package else []
    return next((_OOXML_MACRO[t] for t in types if t in _OOXML_MACRO), "")


def _check_pdf(fh: IO[bytes], name: str) -> int:
    """Return the page count of the PDF `fh`; raise if it is encrypted or damaged."""
    from pypdf import PdfReader

    # Readers accept a little trailing junk after %%EOF; a missing marker means a cut file,
    # and pypdf would otherwise scan backwards line by line through the whole file.
    fh.seek(0, os.SEEK_END)
    fh.seek(max(0, fh.tell() - _PDF_TAIL))
    if b"%%EOF" not in fh.read(_PDF_TAIL):
        raise DamagedFile(_damaged_message(name, "PDF"))
    fh.seek(0)
    try:
        reader = PdfReader(fh)  # a file object: pypdf seeks in it instead of copying it
        if reader.is_encrypted:
            raise EncryptedFile(
                f"Tệp «{name}» là PDF được bảo vệ bằng mật khẩu hoặc mã hóa. "
                "Vui lòng gỡ bảo vệ rồi tải lên lại."
            )
        tree: Any = reader.root_object["/Pages"].get_object()
        declared = tree.get("/Count")
        # Tolerant parsing recovers broken files: a page object it had to guess at lacks
        # the keys every page has, and a lost page makes the tree disagree with /Count.
        pages = sum(1 for page in reader.pages if _looks_like_page(page))
        intact = pages == len(reader.pages) == declared
    except FileRejected:
        raise
    except Exception as exc:
        log.info("pdf rejected as damaged name=%r error=%s", name, exc)
        raise DamagedFile(_damaged_message(name, "PDF")) from exc
    if pages < 1 or not intact:
        raise DamagedFile(_damaged_message(name, "PDF"))
    return pages


def _looks_like_page(page: Any) -> bool:
    return bool(page.get("/Type") == "/Page" or "/Parent" in page)


def _check_image(fh: IO[bytes], name: str) -> None:
    from PIL import Image

    fh.seek(0)
    try:
        with Image.open(fh) as img:
            img.verify()
    except Exception as exc:
        raise DamagedFile(_damaged_message(name, "ảnh")) from exc


def _damaged_message(name: str, kind: str) -> str:
    return f"Tệp «{name}» bị hỏng hoặc không đọc được ({kind}). Vui lòng kiểm tra và tải lên lại."


def inspect_file(fh: IO[bytes], name: str, allowed: frozenset[str]) -> tuple[str, int | None]:
    """Return (MIME type, PDF page count) of the open file `fh`; raise FileRejected."""
    mime = _sniff(fh)
    if mime == _ENCRYPTED_OFFICE:
        raise EncryptedFile(
            f"Tệp «{name}» được bảo vệ bằng mật khẩu. Vui lòng gỡ mật khẩu rồi tải lên lại."
        )
    if mime == _DAMAGED_ZIP:
        raise DamagedFile(_damaged_message(name, "DOCX/XLSX"))
    if mime is None or mime not in allowed:
        seen = TYPE_LABELS.get(mime or "") or _describe_unknown(fh)
        detail = f" (nội dung thực tế là {seen})" if seen else ""
        raise ForbiddenFileType(
            f"Tệp «{name}» không phải {allowed_label(allowed)}{detail}. "
            "Hệ thống kiểm tra nội dung tệp, không dựa vào phần đuôi tên tệp."
        )
    if mime == PDF:
        return mime, _check_pdf(fh, name)
    if mime in IMAGE_TYPES:
        _check_image(fh, name)
    return mime, None


# Storing -----------------------------------------------------------------------------------


def _fs(bucket: str = "fs") -> gridfs.GridFS:
    return gridfs.GridFS(get_db(), collection=bucket)


def _spool(stream: BinaryIO, out: IO[bytes], limit: int, name: str) -> tuple[int, str]:
    """Copy `stream` to `out` in chunks; return (size, sha256); stop past `limit` bytes."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(COPY_CHUNK):
        size += len(chunk)
        if size > limit:
            raise FileTooLarge(f"Tệp «{name}» vượt quá dung lượng cho phép ({format_size(limit)}).")
        digest.update(chunk)
        out.write(chunk)
    out.flush()
    return size, digest.hexdigest()


def _write_gridfs(fh: IO[bytes], filename: str, metadata: dict[str, Any]) -> ObjectId:
    """Write the open file `fh` to GridFS; a failed write leaves no chunk behind."""
    fh.seek(0)
    grid_in = _fs().new_file(filename=filename, metadata=metadata)
    try:
        while chunk := fh.read(COPY_CHUNK):
            grid_in.write(chunk)
        grid_in.close()
    except BaseException:
        grid_in.abort()
        raise
    return ObjectId(grid_in._id)


def store_upload(
    stream: BinaryIO,
    filename: str,
    *,
    allowed: frozenset[str] = DOCUMENT_TYPES,
    max_bytes: int | None = None,
    uploaded_by: str | None = None,
    keep_damaged: bool = False,
) -> StoredFile:
    """Check an upload by its content and store it in GridFS; raise FileRejected.

    `keep_damaged` (migration) stores empty, damaged and encrypted files with a flag instead
    of rejecting them; the type and size rules still apply.
    """
    name = clean_filename(filename)
    limit = current_app.config["UPLOAD_MAX_BYTES"] if max_bytes is None else max_bytes
    flags: list[str] = []
    pages: int | None = None
    with tempfile.TemporaryFile(prefix="vanthu-upload-") as tmp:
        size, sha256 = _spool(stream, tmp, limit, name)
        try:
            if size == 0:
                raise EmptyFile(f"Tệp «{name}» rỗng (0 byte). Vui lòng chọn lại tệp.")
            mime, pages = inspect_file(tmp, name, allowed)
        except (EmptyFile, DamagedFile, EncryptedFile) as exc:
            if not keep_damaged:
                raise
            flags.append(_FLAGS[type(exc)])
            mime = (detect_mime(tmp) if size else None) or UNKNOWN
        name = clean_filename(filename, mime)  # an empty name gets the detected extension
        metadata: dict[str, Any] = {
            "mime": mime,
            "sha256": sha256,
            "uploaded_by": uploaded_by,
            "flags": flags,
        }
        if pages is not None:
            metadata["pages"] = pages
        file_id = _write_gridfs(tmp, name, metadata)
    log.info("stored file=%s mime=%s size=%d flags=%s", file_id, mime, size, flags)
    return StoredFile(
        file_id=file_id,
        filename=name,
        mime=mime,
        size=size,
        sha256=sha256,
        uploaded_at=utcnow(),
        uploaded_by=uploaded_by,
        flags=flags,
    )


@contextmanager
def discard_on_error(*files: StoredFile | None) -> Iterator[None]:
    """Delete `files` from GridFS if the block fails (e.g. saving the document that uses them)."""
    try:
        yield
    except BaseException:
        for stored in files:
            if stored is not None:
                delete_file(stored.file_id)
        raise


# Reading -----------------------------------------------------------------------------------


def open_file(file_id: ObjectId | str) -> GridOut:
    """Return a readable stream (with .filename, .length, .metadata) of a stored file."""
    try:
        return _fs().get(ObjectId(file_id))
    except (gridfs.NoFile, InvalidId, TypeError) as exc:
        raise NotFound("Không tìm thấy tệp trong kho lưu trữ.") from exc


def read_file(file_id: ObjectId | str) -> bytes:
    """Return the bytes of a stored file (only for small files)."""
    with open_file(file_id) as out:
        return bytes(out.read())


@contextmanager
def local_copy(file_id: ObjectId | str, suffix: str = "") -> Iterator[str]:
    """Yield the path of a temporary copy of a stored file (for tools that need a path)."""
    workdir = tempfile.mkdtemp(prefix="vanthu-file-")
    path = os.path.join(workdir, f"file{suffix}")
    try:
        with open_file(file_id) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
        yield path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def pdf_page_count(file_id: ObjectId | str) -> int:
    """Return the page count of a stored PDF; raise DamagedFile if it cannot be read."""
    with open_file(file_id) as out:
        meta = out.metadata or {}
        name = out.filename or "?"
    if isinstance(meta.get("pages"), int):
        return int(meta["pages"])
    with local_copy(file_id, ".pdf") as path, open(path, "rb") as fh:
        return _check_pdf(fh, name)


def delete_file(file_id: ObjectId | str) -> None:
    """Delete a stored file and its chunks; deleting a missing file is not an error."""
    _fs().delete(ObjectId(file_id))


# Revisions ---------------------------------------------------------------------------------


def next_rev(doc: Document) -> int:
    """Return the number the next revision of `doc` takes."""
    return max((r.rev for r in doc.revisions), default=0) + 1


def make_revision(
    stored: StoredFile,
    rev: int,
    *,
    kind: str = "upload",
    source_rev: int | None = None,
    note: str | None = None,
) -> FileRevision:
    """Return a FileRevision numbered `rev` describing `stored`."""
    return FileRevision(
        rev=rev,
        kind=kind,
        source_rev=source_rev,
        note=note,
        file_id=stored.file_id,
        filename=stored.filename,
        mime=stored.mime,
        size=stored.size,
        sha256=stored.sha256,
        uploaded_at=stored.uploaded_at,
        uploaded_by=stored.uploaded_by,
        flags=list(stored.flags),
        text_extracted=stored.text_extracted,
    )


def add_revision(
    doc: Document,
    stored: StoredFile,
    *,
    kind: str = "upload",
    source_rev: int | None = None,
    note: str | None = None,
) -> FileRevision:
    """Append `stored` to `doc` as its next revision and return it; the caller saves `doc`."""
    revision = make_revision(stored, next_rev(doc), kind=kind, source_rev=source_rev, note=note)
    doc.revisions.append(revision)
    return revision


def append_revision(
    document_id: ObjectId | str,
    stored: StoredFile,
    *,
    kind: str,
    source_rev: int | None = None,
    note: str | None = None,
    history: HistoryEntry | None = None,
) -> FileRevision:
    """Append `stored` as the next revision with one atomic push; other fields stay as they are.

    The push only succeeds if no revision took the number meanwhile, so two appends never
    share a number and a concurrent edit of the document's other fields is not overwritten.
    """
    for _ in range(_APPEND_ATTEMPTS):
        doc = Document.objects(pk=document_id).only("revisions").first()
        if doc is None:
            raise NotFound("Không tìm thấy văn bản.")
        revision = make_revision(stored, next_rev(doc), kind=kind, source_rev=source_rev, note=note)
        update: dict[str, Any] = {"push__revisions": revision, "set__updated_at": utcnow()}
        if history is not None:
            update["push__history"] = history
        if Document.objects(pk=document_id, revisions__rev__ne=revision.rev).update_one(**update):
            return revision
    raise Conflict()


# Leak detection ----------------------------------------------------------------------------

FileReferences = Callable[[], Iterable[Any]]
_reference_sources: list[FileReferences] = []


def register_file_references(source: FileReferences) -> FileReferences:
    """Declare a function yielding GridFS ids a model keeps (decorator), for orphan_files."""
    _reference_sources.append(source)
    return source


@register_file_references
def _document_files() -> Iterator[Any]:
    projection = {"revisions.file_id": 1, "attachments.file_id": 1}
    for raw in Document._get_collection().find({}, projection):
        for key in ("revisions", "attachments"):
            for item in raw.get(key) or []:
                yield item.get("file_id")


@register_file_references
def _user_images() -> Iterator[Any]:
    db = get_db()
    for raw in db["user"].find({}, {"signature_image": 1, "initial_image": 1}):
        for key in ("signature_image", "initial_image"):
            if raw.get(key) is not None:
                yield raw[key]
    for raw in db["user_images.files"].find({"thumbnail_id": {"$ne": None}}, {"thumbnail_id": 1}):
        yield raw["thumbnail_id"]


def orphan_files(min_age: dt.timedelta | None = None) -> list[ObjectId]:
    """Return ids of GridFS files no record references (older than `min_age` if given)."""
    referenced = {ref for source in _reference_sources for ref in source() if ref is not None}
    query: dict[str, Any] = {}
    if min_age is not None:
        query["uploadDate"] = {"$lt": utcnow() - min_age}
    db = get_db()
    orphans: list[ObjectId] = []
    for bucket in BUCKETS:
        for raw in db[f"{bucket}.files"].find(query, {"_id": 1}):
            if raw["_id"] not in referenced:
                orphans.append(raw["_id"])
    return orphans
