import hashlib
import io
import os
import unicodedata

import gridfs
import pytest
from mongoengine.connection import get_db
from pypdf import PdfReader

from models.document import Document
from tests.fixtures.files import samples
from workflows import storage
from workflows.errors import Conflict, NotFound, ValidationFailed
from workflows.storage import (
    DOC,
    DOCX,
    JPEG,
    PDF,
    PDF_TYPES,
    PNG,
    TIFF,
    XLS,
    XLSX,
    DamagedFile,
    EmptyFile,
    EncryptedFile,
    FileTooLarge,
    ForbiddenFileType,
    add_revision,
    append_revision,
    clean_filename,
    delete_file,
    discard_on_error,
    local_copy,
    open_file,
    orphan_files,
    pdf_page_count,
    read_file,
    store_upload,
)

ALL = "PDF/DOCX/DOC/XLSX/XLS/JPEG/PNG/TIFF"


def upload(data: bytes, name: str = "tệp.bin", **kwargs):
    return store_upload(io.BytesIO(data), name, **kwargs)


def gridfs_counts() -> tuple[int, int]:
    db = get_db()
    return db["fs.files"].count_documents({}), db["fs.chunks"].count_documents({})


def new_document(**kwargs) -> Document:
    return Document(direction="outgoing", subject="V/v thử nghiệm lưu tệp", **kwargs).save()


@pytest.mark.parametrize(
    ("make", "mime"),
    [
        (samples.pdf_bytes, PDF),
        (samples.docx_bytes, DOCX),
        (samples.xlsx_bytes, XLSX),
        (lambda: samples.ole_bytes("WordDocument"), DOC),
        (lambda: samples.ole_bytes("Workbook"), XLS),
        (lambda: samples.image_bytes("PNG"), PNG),
        (lambda: samples.image_bytes("JPEG"), JPEG),
        (lambda: samples.image_bytes("TIFF"), TIFF),
    ],
    ids=["pdf", "docx", "xlsx", "doc", "xls", "png", "jpeg", "tiff"],
)
def test_type_comes_from_the_content_not_the_name(make, mime):
    data = make()
    # A misleading extension on purpose: only the bytes decide.
    stored = upload(data, "Công văn số 12.pdf" if mime != PDF else "Công văn số 12.docx")
    assert stored.mime == mime
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_file(stored.file_id) == data
    with open_file(stored.file_id) as out:
        assert out.length == len(data)
        assert out.metadata == {
            "mime": mime,
            "sha256": stored.sha256,
            "uploaded_by": None,
            "flags": [],
            **({"pages": 1} if mime == PDF else {}),
        }


def test_large_file_is_stored_in_chunks_with_its_hash():
    data = samples.large_pdf_bytes(3)
    stored = upload(data, "scan.pdf", uploaded_by="u1")
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert stored.uploaded_by == "u1"
    assert gridfs_counts()[1] > 10  # 255 KiB chunks, not one document
    with open_file(stored.file_id) as out:
        assert hashlib.sha256(out.read()).hexdigest() == stored.sha256


def test_pdf_page_count_from_upload_and_from_the_file():
    stored = upload(samples.pdf_bytes(pages=3), "ba trang.pdf")
    assert pdf_page_count(stored.file_id) == 3
    get_db()["fs.files"].update_one({"_id": stored.file_id}, {"$unset": {"metadata.pages": ""}})
    assert pdf_page_count(stored.file_id) == 3


@pytest.mark.parametrize(
    ("data", "name", "error", "message"),
    [
        (b"", "trống.pdf", EmptyFile, "Tệp «trống.pdf» rỗng (0 byte)"),
        (
            samples.exe_bytes(),
            "setup.pdf",
            ForbiddenFileType,
            f"Tệp «setup.pdf» không phải {ALL} (nội dung thực tế là tệp chương trình (EXE))",
        ),
        (
            samples.encrypted_pdf_bytes(),
            "mật.pdf",
            EncryptedFile,
            "Tệp «mật.pdf» là PDF được bảo vệ bằng mật khẩu hoặc mã hóa",
        ),
        (
            samples.encrypted_pdf_bytes("123456"),
            "mật.pdf",
            EncryptedFile,
            "Tệp «mật.pdf» là PDF được bảo vệ",
        ),
        (samples.truncated_pdf_bytes(), "đứt.pdf", DamagedFile, "Tệp «đứt.pdf» bị hỏng"),
        (b"%PDF-1.7\n" + b"\0" * 500, "rác.pdf", DamagedFile, "Tệp «rác.pdf» bị hỏng"),
        (samples.corrupted_pdf_bytes(), "lỗi.pdf", DamagedFile, "Tệp «lỗi.pdf» bị hỏng"),
        (
            samples.pdf_bytes() + b"\n" * (100 * 1024),
            "đuôi.pdf",
            DamagedFile,
            "Tệp «đuôi.pdf» bị hỏng",
        ),
        (samples.image_bytes("PNG")[:60], "ảnh.png", DamagedFile, "Tệp «ảnh.png» bị hỏng"),
        (
            samples.docx_bytes(main_type=samples.DOCM_MAIN),
            "macro.docx",
            ForbiddenFileType,
            "(nội dung thực tế là DOCM (có macro))",
        ),
        (samples.plain_zip_bytes(), "nén.docx", ForbiddenFileType, "(nội dung thực tế là tệp nén)"),
        (samples.docx_bytes()[:200], "cụt.docx", DamagedFile, "Tệp «cụt.docx» bị hỏng"),
        (
            samples.ole_bytes("EncryptedPackage"),
            "khóa.docx",
            EncryptedFile,
            "được bảo vệ bằng mật khẩu",
        ),
        (samples.ole_bytes("\x05SummaryInformation"), "lạ.doc", ForbiddenFileType, "lạ.doc"),
        (
            # The name inside a stream's data, not in a directory entry: not a Word file.
            samples.ole_bytes("Contents", payload=b"xyz" + "WordDocument".encode("utf-16-le")),
            "giả.doc",
            ForbiddenFileType,
            "giả.doc",
        ),
        (b"Hello, just text\n" * 20, "ghi chú.pdf", ForbiddenFileType, f"không phải {ALL}."),
    ],
    ids=[
        "empty",
        "exe-renamed-pdf",
        "encrypted-pdf",
        "password-pdf",
        "truncated-pdf",
        "garbage-pdf",
        "corrupted-page-tree",
        "no-eof-near-end",
        "truncated-png",
        "docm",
        "plain-zip",
        "truncated-docx",
        "encrypted-ooxml",
        "unknown-ole",
        "ole-name-in-data",
        "text",
    ],
)
def test_bad_files_are_rejected_with_a_message_and_leave_nothing(data, name, error, message):
    with pytest.raises(error) as raised:
        upload(data, name)
    assert isinstance(raised.value, ValidationFailed)
    assert message in raised.value.message
    assert gridfs_counts() == (0, 0)
    assert orphan_files() == []


def test_allowed_types_narrow_what_is_accepted():
    with pytest.raises(ForbiddenFileType) as raised:
        upload(samples.docx_bytes(), "dự thảo.pdf", allowed=PDF_TYPES)
    assert raised.value.message.startswith(
        "Tệp «dự thảo.pdf» không phải PDF (nội dung thực tế là DOCX)."
    )
    assert gridfs_counts() == (0, 0)


class EndlessStream:
    """A stream that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = 65536 if n is None or n < 0 else n
        self.read_bytes += n
        return b"%PDF-1.7\n".ljust(n, b"\0")


def test_oversize_stops_reading_at_the_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 2 * 1024 * 1024)
    stream = EndlessStream()
    with pytest.raises(FileTooLarge) as raised:
        store_upload(stream, "vô tận.pdf")  # type: ignore[arg-type]
    assert raised.value.message == "Tệp «vô tận.pdf» vượt quá dung lượng cho phép (2 MB)."
    assert raised.value.status == 413
    assert stream.read_bytes <= 2 * 1024 * 1024 + storage.COPY_CHUNK
    with pytest.raises(FileTooLarge, match=r"\(1,5 KB\)"):
        upload(samples.pdf_bytes(), "nhỏ.pdf", max_bytes=1536)
    assert gridfs_counts() == (0, 0)


def test_a_failed_gridfs_write_leaves_no_chunks(monkeypatch):
    # GridIn buffers chunks and inserts them at close, before the files document: fail
    # right after the chunks went in, as a lost connection would.
    def flush_then_fail(self):
        self._flush_buffer(force=True)
        raise OSError("mất kết nối")

    monkeypatch.setattr(gridfs.GridIn, "_flush", flush_then_fail)
    data = samples.large_pdf_bytes(3)
    with pytest.raises(OSError):
        upload(data, "lớn.pdf")
    assert gridfs_counts() == (0, 0)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("C:\\Users\\vanthu\\Desktop\\Công văn 12.pdf", "Công văn 12.pdf"),
        ("../../etc/Tờ trình.pdf", "Tờ trình.pdf"),
        (unicodedata.normalize("NFD", "Quyết định.pdf"), "Quyết định.pdf"),
        ("hợp\x00 đồng\r\n.pdf", "hợp đồng.pdf"),
        ("báo cáo\u202efdp.exe", "báo cáofdp.exe"),
        ('a<b>:"c"|?*.pdf', "a_b___c____.pdf"),
        ("  ...  ", "tep-tai-len.pdf"),
        ("..hidden.pdf.", "hidden.pdf"),
        ("  nhiều    khoảng   trắng .docx ", "nhiều khoảng trắng .docx"),
    ],
)
def test_filenames_keep_vietnamese_but_lose_paths_and_controls(raw, clean):
    assert clean_filename(raw, PDF) == clean
    assert unicodedata.is_normalized("NFC", clean_filename(raw, PDF))


def test_long_filename_keeps_its_extension():
    name = clean_filename("Kế hoạch " * 50 + ".docx")
    assert len(name) <= 255 and name.endswith(".docx")


def test_stored_filename_is_clean_and_nameless_upload_gets_the_type_extension():
    stored = upload(samples.pdf_bytes(), unicodedata.normalize("NFD", "/tmp/Giấy mời.pdf"))
    assert stored.filename == "Giấy mời.pdf"
    with open_file(stored.file_id) as out:
        assert out.filename == "Giấy mời.pdf"
    assert upload(samples.docx_bytes(), "").filename == "tep-tai-len.docx"


def test_keep_damaged_stores_with_flags_for_migration():
    damaged = upload(samples.truncated_pdf_bytes(), "cũ.pdf", keep_damaged=True)
    assert (damaged.mime, damaged.flags) == (PDF, ["damaged"])
    encrypted = upload(samples.encrypted_pdf_bytes(), "cũ.pdf", keep_damaged=True)
    assert encrypted.flags == ["encrypted"]
    empty = upload(b"", "rỗng.pdf", keep_damaged=True)
    assert (empty.mime, empty.size, empty.flags) == ("application/octet-stream", 0, ["empty"])
    assert read_file(empty.file_id) == b""
    with pytest.raises(ForbiddenFileType):
        upload(samples.exe_bytes(), "virus.pdf", keep_damaged=True)


def test_revisions_are_numbered_and_reference_their_files():
    doc = new_document()
    first = add_revision(doc, upload(samples.docx_bytes(), "dự thảo.docx"), kind="upload")
    pdf = upload(samples.pdf_bytes(), "dự thảo.pdf")
    second = add_revision(doc, pdf, kind="converted", source_rev=1, note="LibreOffice")
    doc.save()
    doc.reload()
    assert [(r.rev, r.kind, r.source_rev) for r in doc.revisions] == [
        (1, "upload", None),
        (2, "converted", 1),
    ]
    assert (first.rev, second.rev) == (1, 2)
    assert doc.current_pdf is not None and doc.current_pdf.file_id == pdf.file_id
    assert doc.revisions[1].sha256 == pdf.sha256 and doc.revisions[1].note == "LibreOffice"
    assert orphan_files() == []


def test_append_revision_pushes_without_losing_a_concurrent_edit(monkeypatch):
    doc = new_document()
    add_revision(doc, upload(samples.docx_bytes(), "dự thảo.docx"))
    doc.save()
    stale = Document.objects.get(pk=doc.pk)
    # Another user edits the subject after the stale copy was read.
    Document.objects(pk=doc.pk).update_one(set__subject="V/v đã sửa")
    # Someone else takes number 2 between our read and our push: the push must retry as 3.
    real_next = storage.next_rev
    raced = {"done": False}

    def racing_next_rev(d):
        if not raced["done"]:
            raced["done"] = True
            add_revision(stale, upload(samples.pdf_bytes(), "khác.pdf"))
            Document.objects(pk=doc.pk).update_one(push__revisions=stale.revisions[-1])
        return real_next(d)

    monkeypatch.setattr(storage, "next_rev", racing_next_rev)
    monkeypatch.setattr(storage, "_APPEND_ATTEMPTS", 5)
    revision = append_revision(doc.pk, upload(samples.pdf_bytes(), "mới.pdf"), kind="signed")
    doc.reload()
    assert revision.rev == 3
    assert [r.rev for r in doc.revisions] == [1, 2, 3]
    assert doc.subject == "V/v đã sửa"


def test_append_revision_gives_up_with_a_conflict(monkeypatch):
    doc = new_document()
    add_revision(doc, upload(samples.pdf_bytes(), "a.pdf"))
    doc.save()
    monkeypatch.setattr(storage, "next_rev", lambda d: 1)  # always a taken number
    with pytest.raises(Conflict):
        append_revision(doc.pk, upload(samples.pdf_bytes(), "b.pdf"), kind="upload")
    with pytest.raises(NotFound):
        append_revision("0" * 24, upload(samples.pdf_bytes(), "c.pdf"), kind="upload")


def test_orphan_files_sees_every_reference(users):
    from models.user import User

    doc = new_document()
    attached = upload(samples.xlsx_bytes(), "phụ lục.xlsx")
    doc.attachments.append(attached)
    add_revision(doc, upload(samples.pdf_bytes(), "chính.pdf"))
    doc.save()
    user = User.objects.get(username="chuyenvien")
    user.signature_image.put(io.BytesIO(samples.image_bytes("PNG")))
    user.save()
    assert orphan_files() == []
    lost = upload(samples.pdf_bytes(), "lạc.pdf")
    assert orphan_files() == [lost.file_id]
    import datetime as dt

    assert orphan_files(min_age=dt.timedelta(hours=1)) == []
    delete_file(lost.file_id)
    delete_file(lost.file_id)  # deleting twice is harmless
    assert orphan_files() == []


def test_discard_on_error_removes_files_of_a_failed_save():
    stored = upload(samples.pdf_bytes(), "a.pdf")
    with pytest.raises(ValueError), discard_on_error(stored):
        raise ValueError("save failed")
    assert gridfs_counts() == (0, 0)
    kept = upload(samples.pdf_bytes(), "b.pdf")
    with discard_on_error(kept):
        pass
    assert read_file(kept.file_id)


def test_reading_a_missing_file_is_not_found_and_local_copy_cleans_up():
    with pytest.raises(NotFound):
        open_file("0" * 24)
    with pytest.raises(NotFound):
        read_file("not-an-id")
    stored = upload(samples.pdf_bytes(), "a.pdf")
    with local_copy(stored.file_id, ".pdf") as path, open(path, "rb") as fh:
        assert len(PdfReader(fh).pages) == 1
    assert not os.path.exists(path)
