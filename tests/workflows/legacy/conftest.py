"""Fixtures for the legacy export reader: an export writer and real PDFs."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fpdf import FPDF

from workflows.legacy.text import encode_cp1258

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def encode(text: str, encoding: str) -> bytes:
    """Encode text as an exporter would: utf-8, utf-8-sig (BOM) or cp1258."""
    if encoding == "cp1258":
        return encode_cp1258(text)
    return text.encode(encoding)


def csv_text(header: list[str], rows: Iterable[dict[str, Any]], delimiter: str = ",") -> str:
    """Render rows as CSV text (quoted newlines where needed, CRLF line ends like Excel)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else row.get(h) for h in header])
    return out.getvalue()


def jsonl_text(rows: Iterable[dict[str, Any] | str]) -> str:
    """Render documents as JSON Lines; a str row is written as is (to plant broken lines)."""
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                   for r in rows)  # fmt: skip


def write_export(root: Path, members: dict[str, bytes | str]) -> Path:
    """Write an export folder: member path -> bytes (str is written as UTF-8)."""
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return root


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """Zip an export folder (optionally inside a top-level folder, as people zip folders)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def make_pdf(text: str) -> bytes:
    """Make a small real PDF with Vietnamese text (fpdf2 + DejaVu)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=FONT)
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, user_password: str, owner_password: str = "chu") -> bytes:
    """Encrypt a PDF with pypdf (an empty user password: readable but restricted)."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password,
                   algorithm="AES-128")  # fmt: skip
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="session")
def pdf_bytes() -> bytes:
    """A real one-page PDF holding Vietnamese text."""
    return make_pdf("Quyết định số 12/QĐ-UBND\nĐiều 1. Phê duyệt kế hoạch chuyển đổi số.")


class ExportKit:
    """Helpers the tests use to build exports byte by byte under a temporary folder."""

    encode = staticmethod(encode)
    csv_text = staticmethod(csv_text)
    jsonl_text = staticmethod(jsonl_text)
    make_pdf = staticmethod(make_pdf)
    encrypt_pdf = staticmethod(encrypt_pdf)

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, members: dict[str, bytes | str]) -> Path:
        """Write an export folder ``name`` under the temporary folder."""
        return write_export(self.root / name, members)

    def zip(self, folder: Path, prefix: str = "") -> Path:
        """Zip an export folder next to it."""
        return zip_folder(folder, folder.with_suffix(".zip"), prefix)


@pytest.fixture(scope="session")
def kit_class() -> type[ExportKit]:
    """Return the helper class, for fixtures wider than one test."""
    return ExportKit


@pytest.fixture
def kit(tmp_path: Path) -> ExportKit:
    """Return the export-building helpers bound to tmp_path."""
    return ExportKit(tmp_path)
