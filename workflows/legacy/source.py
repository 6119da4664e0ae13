"""Export sources: a folder or a .zip, whose members are opened as streams."""

from __future__ import annotations

import os
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

MARKERS = ("manifest.json", "documents.jsonl", "documents.csv")


class ExportError(Exception):
    """An export that cannot be read at all; the message is Vietnamese."""


def clean_member_name(name: str) -> str | None:
    """Return a relative '/' path in NFC, or None when it is absolute or climbs out (..)."""
    name = unicodedata.normalize("NFC", name.strip().replace("\\", "/"))
    while name.startswith("./"):
        name = name[2:]
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        return None
    return "/".join(part for part in parts if part != ".")


class ExportSource:
    """Read-only access to the members of an export; use ``open_export`` to get one."""

    kind = "folder"

    def __init__(self, path: Path) -> None:
        self.path = path

    def resolve(self, name: str) -> str | None:
        """Find a member by name, tolerating NFC/NFD, backslashes and letter case."""
        raise NotImplementedError

    def open(self, member: str) -> IO[bytes]:
        """Open a resolved member as a binary stream (the caller closes it)."""
        raise NotImplementedError

    def size(self, member: str) -> int:
        """Return a resolved member's size in bytes."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the source."""

    def __enter__(self) -> ExportSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FolderSource(ExportSource):
    """An export unpacked in a folder."""

    kind = "folder"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._listing_cache: dict[str, dict[str, str]] = {}

    def _listing(self, directory: str) -> dict[str, str]:
        if directory not in self._listing_cache:
            if len(self._listing_cache) > 64:
                self._listing_cache.clear()
            try:
                names = os.listdir(self.path / directory)
            except OSError:
                names = []
            self._listing_cache[directory] = {
                unicodedata.normalize("NFC", n).casefold(): n for n in names
            }
        return self._listing_cache[directory]

    def resolve(self, name: str) -> str | None:
        clean = clean_member_name(name)
        if clean is None:
            return None
        for candidate in (clean, unicodedata.normalize("NFD", clean)):
            if (self.path / candidate).is_file():
                return candidate
        # Slow path: walk the parts comparing NFC + casefold (exports made on Windows/macOS).
        current = ""
        for part in clean.split("/"):
            real = self._listing(current).get(part.casefold())
            if real is None:
                return None
            current = f"{current}/{real}" if current else real
        return current if (self.path / current).is_file() else None

    def open(self, member: str) -> IO[bytes]:
        return open(self.path / member, "rb")

    def size(self, member: str) -> int:
        return (self.path / member).stat().st_size


def _zip_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        # Names without the UTF-8 flag were decoded as cp437; most tools wrote UTF-8 or cp1258.
        raw = name.encode("cp437", errors="replace")
        for encoding in ("utf-8", "cp1258"):
            try:
                name = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


class ZipSource(ExportSource):
    """An export packed in a .zip; members are streamed, never extracted."""

    kind = "zip"

    def __init__(self, path: Path, markers: tuple[str, ...] = MARKERS) -> None:
        super().__init__(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ExportError(f"Không mở được tệp zip '{path.name}': {exc}") from exc
        names = {_zip_name(i): i for i in self._zip.infolist() if not i.is_dir()}
        self.prefix = _common_root(names, markers)
        cut = len(self.prefix)
        self._members = {name[cut:]: info for name, info in names.items()}
        self._folded: dict[str, str] | None = None

    def resolve(self, name: str) -> str | None:
        clean = clean_member_name(name)
        if clean is None:
            return None
        if clean in self._members:
            return clean
        if self._folded is None:
            self._folded = {n.casefold(): n for n in self._members}
        return self._folded.get(clean.casefold())

    def open(self, member: str) -> IO[bytes]:
        return self._zip.open(self._members[member])

    def size(self, member: str) -> int:
        return self._members[member].file_size

    def close(self) -> None:
        self._zip.close()


def _common_root(names: dict[str, zipfile.ZipInfo], markers: tuple[str, ...]) -> str:
    """Return 'folder/' when the export sits inside one top-level folder of the zip."""
    if any(name in names for name in markers):
        return ""
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    for top in sorted(tops):
        if any(f"{top}/{marker}" in names for marker in markers):
            return f"{top}/"
    return ""


def _folder_root(path: Path, markers: tuple[str, ...]) -> Path:
    """Return the folder itself, or its only subfolder holding the export."""
    if any((path / marker).exists() for marker in markers):
        return path
    subfolders = [p for p in path.iterdir() if p.is_dir()]
    for sub in subfolders if len(subfolders) == 1 else ():
        if any((sub / marker).exists() for marker in markers):
            return sub
    return path


def open_export(path: str | Path, document_files: tuple[str, ...] = ()) -> ExportSource:
    """Open an export folder or .zip for streaming reads (use as a context manager).

    ``document_files`` are the mapping's names for the documents table (default names too).
    """
    path = Path(path)
    markers = tuple(dict.fromkeys((*MARKERS, *document_files)))
    if path.is_dir():
        source: ExportSource = FolderSource(_folder_root(path, markers))
    elif path.is_file():
        source = ZipSource(path, markers)
    else:
        raise ExportError(f"Không tìm thấy thư mục hoặc tệp zip '{path}'.")
    if not any(source.resolve(marker) for marker in markers):
        source.close()
        raise ExportError(
            f"'{path.name}' không phải bản xuất dữ liệu: không có manifest.json và không có "
            f"tệp văn bản ({', '.join(markers[1:])})."
        )
    return source
