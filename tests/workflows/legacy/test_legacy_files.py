"""Attachment files: streaming, hashing, classification and PDF text."""

from __future__ import annotations

import hashlib
import os
import zipfile

import pytest

from workflows.legacy import extract_pdf_text, inspect_attachment, open_export
from workflows.legacy import files as files_module


def export_with(kit, files):
    return kit.write("e", {"documents.csv": "legacy_id,direction\r\n", **files})


def test_sink_receives_every_byte_in_chunks_once(kit):
    data = os.urandom(files_module.CHUNK * 2 + 123)
    chunks: list[bytes] = []
    with open_export(export_with(kit, {"files/big.bin": data})) as source:
        check = inspect_attachment(
            source, "files/big.bin", expected_sha256=hashlib.sha256(data).hexdigest(),
            expected_size=len(data), sink=chunks.append,
        )  # fmt: skip
    assert check.status == "ok" and not check.is_pdf and check.size == len(data)
    assert len(chunks) == 3 and max(map(len, chunks)) == files_module.CHUNK
    assert b"".join(chunks) == data


def test_flawed_file_bytes_still_reach_the_sink(kit, pdf_bytes):
    damaged = pdf_bytes[:300]
    chunks: list[bytes] = []
    with open_export(export_with(kit, {"files/d.pdf": damaged})) as source:
        check = inspect_attachment(source, "files/d.pdf", expected_sha256="0" * 64,
                                   sink=chunks.append)  # fmt: skip
    assert check.status == "sha_mismatch" and check.flags == ["sha_mismatch", "damaged_pdf"]
    assert check.flawed and len(check.reasons) == 2 and b"".join(chunks) == damaged


def test_missing_file_never_touches_the_sink(kit):
    with open_export(export_with(kit, {})) as source:
        check = inspect_attachment(source, "files/none.pdf", sink=pytest.fail)
    assert check.status == "missing" and not check.flawed and "files/none.pdf" in check.reason


@pytest.mark.parametrize("engine", ["auto", "pdftotext", "pypdf"])
def test_text_is_capped(kit, pdf_bytes, engine):
    with open_export(export_with(kit, {"files/a.pdf": pdf_bytes})) as source:
        check = inspect_attachment(source, "files/a.pdf", max_text_chars=10, engine=engine)
    assert check.text == "Quyết định" and check.text_truncated


def test_without_text_extraction_encryption_is_still_found(kit, pdf_bytes):
    members = {"files/enc.pdf": kit.encrypt_pdf(pdf_bytes, "x"),
               "files/own.pdf": kit.encrypt_pdf(pdf_bytes, "")}  # fmt: skip
    with open_export(export_with(kit, members)) as source:
        enc = inspect_attachment(source, "files/enc.pdf", extract_text=False)
        own = inspect_attachment(source, "files/own.pdf", extract_text=False)
    assert enc.status == "encrypted_pdf" and enc.text == ""
    assert own.status == "ok" and own.notes == ["restricted_pdf"]


def pdf_kinds(kit, pdf_bytes):
    """Members a.pdf (ok), enc.pdf (password), own.pdf (owner password only), bad, cut."""
    return {
        "files/a.pdf": pdf_bytes,
        "files/enc.pdf": kit.encrypt_pdf(pdf_bytes, "x"),
        "files/own.pdf": kit.encrypt_pdf(pdf_bytes, ""),
        "files/bad.pdf": b"%PDF-1.7\n" + b"garbage " * 50 + b"\n%%EOF\n",
        "files/cut.pdf": pdf_bytes[: len(pdf_bytes) // 2],
    }


@pytest.mark.parametrize("engine", ["pdfium", "pdftotext", "pypdf"])
def test_every_engine_classifies_the_same(kit, pdf_bytes, engine):
    if engine == "pdfium":
        pytest.importorskip("pypdfium2")
    members = pdf_kinds(kit, pdf_bytes)
    with open_export(export_with(kit, members)) as source:
        checks = {
            name: inspect_attachment(source, f"files/{name}.pdf", engine=engine)
            for name in ("a", "enc", "own", "bad", "cut")
        }
    assert {name: c.status for name, c in checks.items()} == {
        "a": "ok", "enc": "encrypted_pdf", "own": "ok", "bad": "damaged_pdf", "cut": "damaged_pdf"
    }  # fmt: skip
    assert "Điều 1. Phê duyệt kế hoạch chuyển đổi số." in checks["a"].text
    assert "chuyển đổi số" in checks["own"].text and checks["own"].notes == ["restricted_pdf"]
    assert checks["enc"].text == "" and "mật khẩu" in checks["enc"].reason


def test_auto_engine_falls_back_to_what_is_installed(monkeypatch):
    monkeypatch.setattr(files_module.importlib.util, "find_spec", lambda name: None)
    assert files_module.pdf_engine() == "pdftotext"
    monkeypatch.setattr(files_module.shutil, "which", lambda name: None)
    assert files_module.pdf_engine() == "pypdf"
    assert files_module.pdf_engine("pdftotext") == "pdftotext"


@pytest.mark.parametrize("engine", ["pdftotext", "auto"])
def test_extract_pdf_text_says_why_a_pdf_is_damaged(tmp_path, pdf_bytes, engine):
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 50 + b"\n%%EOF\n")
    result = extract_pdf_text(str(path), engine=engine)
    assert result.error == "damaged" and result.detail and result.text == ""
    path.write_bytes(pdf_bytes)
    result = extract_pdf_text(str(path), engine=engine)
    assert result.error is None and "Điều 1" in result.text


def test_corrupted_zip_member_is_unreadable_not_a_crash(kit, tmp_path, pdf_bytes):
    path = tmp_path / "e.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("documents.csv", "legacy_id,direction\r\n")
        zf.writestr("files/a.pdf", pdf_bytes)
    data = bytearray(path.read_bytes())
    at = data.index(b"Catalog")  # inside the PDF member: its CRC no longer matches
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_export(path) as source:
        check = inspect_attachment(source, "files/a.pdf")
    assert check.status == "unreadable" and check.sha256 is None and "CRC" in check.reason


def test_temporary_copies_are_removed(kit, pdf_bytes, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(files_module.tempfile, "tempdir", None)
    with open_export(export_with(kit, {"files/a.pdf": pdf_bytes})) as source:
        inspect_attachment(source, "files/a.pdf")
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.fixture
def temp(tmp_path, monkeypatch):
    """A temporary directory of the test's own, where tempfile puts its files."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(files_module.tempfile, "tempdir", None)
    return path


def test_text_worker_gives_the_same_checks_and_removes_its_copies(kit, pdf_bytes, temp):
    members = {**pdf_kinds(kit, pdf_bytes), "files/note.txt": b"not a pdf"}
    names = [m.removeprefix("files/") for m in members]
    with open_export(export_with(kit, members)) as source:
        inline = [inspect_attachment(source, f"files/{n}") for n in names]
        with files_module.TextWorker() as texts:
            later = [inspect_attachment(source, f"files/{n}", texts=texts) for n in names]
            assert [c.pending is not None for c in later] == [True] * 5 + [False]
            settled = [c.settle() for c in later]
    assert settled == inline and all(c.pending is None for c in settled)
    assert {c.status for c in settled} == {"ok", "encrypted_pdf", "damaged_pdf"}
    assert list(temp.glob("legacy-*")) == []  # (multiprocessing keeps its own pymp-* dir)


def test_a_pdf_that_kills_the_text_worker_is_flagged_and_the_rest_read(kit, pdf_bytes, temp):
    import time

    from tests.workflows.pdf_reader_crash import MARKER, crash_on_marker

    crashing = pdf_bytes.replace(b"\n", b"\n" + MARKER + b"\n", 1)
    members = {"files/ok.pdf": pdf_bytes, "files/boom.pdf": crashing}
    order = ["ok", "boom", "ok", "ok"]
    source = open_export(export_with(kit, members))
    with source, files_module.TextWorker(crash_on_marker) as texts:
        checks = [inspect_attachment(source, f"files/{n}.pdf", texts=texts) for n in order]
        deadline = time.monotonic() + 30
        while not texts._pool._broken and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        assert texts._pool._broken  # type: ignore[union-attr]
        # Submitted to the dead worker: goes to a new one.
        checks.append(inspect_attachment(source, "files/ok.pdf", texts=texts))
        settled = [c.settle() for c in checks]
    assert [c.status for c in settled] == ["ok", "damaged_pdf", "ok", "ok", "ok"]
    assert all("Điều 1" in c.text for c in settled if c.status == "ok")
    assert files_module.READER_CRASHED in settled[1].reason
    assert list(temp.glob("legacy-*")) == []
