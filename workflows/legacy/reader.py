"""Stream the tables of a legacy export row by row (JSON Lines or CSV), never loading a file."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Generic, TypeVar

from . import rows as r
from .dates import parse_date
from .fields import ROW_TYPES, RowBuilder
from .mapping import Mapping, default_mapping
from .source import ExportSource
from .text import DecodeStats, clean_text, decode_lines, sniff_delimiter

R = TypeVar("R", bound=r.Row)
BUFFER = 1 << 20
MAX_RAW_TEXT = 2000

# Legacy text fields can be megabytes long; the csv module's 128 KiB default would fail.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _buffered(stream: IO[bytes]) -> io.BufferedReader:
    return io.BufferedReader(stream, BUFFER)  # type: ignore[arg-type]


class TableReader(Generic[R]):
    """Iterate one table's rows; after (or during) iteration, file facts are on the object.

    ``member`` is None when the export has no file for the table (then no rows).
    ``problems`` holds file-level problems (missing columns); row problems are on rows.
    Rows numbered ``<= start_after`` are counted but not converted (for resuming).
    """

    def __init__(
        self, source: ExportSource, mapping: Mapping, table: str, *, start_after: int = 0
    ) -> None:
        self.source = source
        self.mapping = mapping
        self.table = table
        self.start_after = start_after
        self.member = next(
            (m for name in mapping.table(table).files if (m := source.resolve(name))), None
        )
        self.format = (
            "jsonl"
            if self.member and self.member.lower().endswith((".jsonl", ".ndjson"))
            else "csv"
        )
        self.encoding: str | None = None
        self.delimiter: str | None = None
        self.header: list[str] = []
        self.problems: list[r.Problem] = []
        self.rows_read = 0

    def __iter__(self) -> Iterator[R]:
        if self.member is None:
            return iter(())
        return self._iterate()

    def _iterate(self) -> Iterator[R]:
        assert self.member is not None
        builder = RowBuilder(self.mapping, self.table)
        with self.source.open(self.member) as raw, _buffered(raw) as stream:
            if self.format == "jsonl":
                yield from self._jsonl(stream, builder)  # type: ignore[misc]
            else:
                yield from self._csv(stream, builder)  # type: ignore[misc]

    def _jsonl(self, stream: io.BufferedReader, builder: RowBuilder) -> Iterator[r.Row]:
        self.encoding = "utf-8"
        row = 0
        for line, data in enumerate(stream, 1):
            if line == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
                self.encoding = "utf-8-sig"
            if not data.strip():
                continue
            row += 1
            self.rows_read = row
            if row <= self.start_after:
                continue
            problems: list[r.Problem] = []
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("cp1258", errors="replace")
                problems.append(
                    r.Problem(
                        r.ENCODING_FALLBACK, "Dòng không phải UTF-8, đã đọc theo Windows-1258."
                    )
                )
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield self._broken(
                    row, line, text, r.MALFORMED_JSON, f"JSON hỏng: {exc.msg} (cột {exc.colno})."
                )
                continue
            if not isinstance(record, dict):
                yield self._broken(
                    row, line, text, r.NOT_AN_OBJECT, "Dòng JSON không phải một đối tượng {...}."
                )
                continue
            built = builder.build(row, line, record)
            built.problems[:0] = problems
            yield built

    def _broken(self, row: int, line: int, text: str, kind: str, reason: str) -> r.Row:
        out = ROW_TYPES[self.table](row=row, line=line)
        out.raw_text = text.rstrip("\r\n")
        out.problems.append(r.Problem(kind, reason, None, r.REJECT))
        return out

    def _csv(self, stream: io.BufferedReader, builder: RowBuilder) -> Iterator[r.Row]:
        stats = DecodeStats()
        if stream.peek(2)[:2] not in (b"\xff\xfe", b"\xfe\xff"):
            lines = decode_lines(stream, stats, encoding=self.mapping.encoding)
            yield from self._csv_rows(lines, stats, builder)
            return
        stats.encoding = "utf-16"
        with io.TextIOWrapper(stream, encoding="utf-16", newline="") as text:
            yield from self._csv_rows(text, stats, builder)

    def _csv_rows(
        self, lines: Iterable[str], stats: DecodeStats, builder: RowBuilder
    ) -> Iterator[r.Row]:
        iterator = iter(lines)
        first = next(iterator, "")
        self.delimiter = self.mapping.delimiter or sniff_delimiter(
            first.splitlines()[0] if first else ""
        )
        reader = csv.reader(_chain(first, iterator), delimiter=self.delimiter, strict=False)
        header_found = False
        row = 0
        previous_end = 0
        fallback_seen = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row += 1
                start, previous_end = previous_end + 1, reader.line_num
                if header_found and row > self.start_after:
                    yield self._broken(row, start, "", r.CSV_ERROR, f"Lỗi CSV: {exc}.")
                continue
            start, previous_end = previous_end + 1, reader.line_num
            self.encoding = stats.effective
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            if not header_found:
                header_found = True
                self.header = _header(values)
                self.problems.extend(builder.bind_header(self.header))
                continue
            row += 1
            self.rows_read = row
            if row <= self.start_after:
                continue
            record = dict(zip(self.header, values, strict=False))
            built = builder.build(row, start, record)
            extra = [v for v in values[len(self.header) :] if v.strip()]
            if extra:
                built.raw["_extra"] = values[len(self.header) :]
                built.problems.append(
                    r.Problem(
                        r.EXTRA_COLUMNS,
                        f"Dòng có {len(values)} cột, tiêu đề chỉ có {len(self.header)} cột "
                        "(có thể thiếu dấu ngoặc kép quanh giá trị chứa dấu phân cách).",
                        None,
                        r.REJECT,
                    )
                )
            while fallback_seen < len(stats.fallback_lines):
                if stats.fallback_lines[fallback_seen] >= start:
                    built.problems.append(
                        r.Problem(
                            r.ENCODING_FALLBACK,
                            f"Dòng {stats.fallback_lines[fallback_seen]} dùng bảng mã khác "
                            f"phần còn lại của tệp ({stats.encoding}).",
                        )
                    )
                fallback_seen += 1
            yield built
        self.encoding = stats.effective


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _header(values: list[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        name = clean_text(value, single_line=True).text
        if name in names:
            name = f"{name}#{names.count(name) + 1}"
        names.append(name)
    return names


def read_documents(
    source: ExportSource, mapping: Mapping | None = None, *, start_after: int = 0
) -> TableReader[r.DocumentRow]:
    """Stream the documents table (documents.jsonl or documents.csv)."""
    return TableReader(source, mapping or default_mapping(), "documents", start_after=start_after)


def read_attachments(
    source: ExportSource, mapping: Mapping | None = None, *, start_after: int = 0
) -> TableReader[r.AttachmentRow]:
    """Stream the attachments table (attachments.csv)."""
    return TableReader(source, mapping or default_mapping(), "attachments", start_after=start_after)


def read_history(
    source: ExportSource, mapping: Mapping | None = None, *, start_after: int = 0
) -> TableReader[r.HistoryRow]:
    """Stream the legacy processing history (history.csv)."""
    return TableReader(source, mapping or default_mapping(), "history", start_after=start_after)


def read_manifest(source: ExportSource) -> r.Manifest:
    """Read manifest.json; a missing or broken one gives problems, not an exception."""
    manifest = r.Manifest()
    member = source.resolve("manifest.json")
    if member is None:
        manifest.problems.append(r.Problem(r.MISSING_MANIFEST, "Bản xuất không có manifest.json."))
        return manifest
    try:
        with source.open(member) as stream:
            data = json.loads(stream.read(10 * 1024 * 1024).decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        manifest.problems.append(
            r.Problem(r.MALFORMED_MANIFEST, f"manifest.json không đọc được: {exc}.")
        )
        return manifest
    if not isinstance(data, dict):
        manifest.problems.append(
            r.Problem(r.MALFORMED_MANIFEST, "manifest.json không phải một đối tượng JSON.")
        )
        return manifest
    manifest.present = True
    manifest.raw = data
    manifest.system = clean_text(str(data.get("system") or ""), single_line=True).text
    manifest.organization = clean_text(str(data.get("organization") or ""), single_line=True).text
    version = data.get("format_version")
    manifest.format_version = version if isinstance(version, int) else None
    exported = str(data.get("exported_at") or "")
    if exported:
        try:
            manifest.exported_at = datetime.fromisoformat(exported)
        except ValueError:
            parsed = parse_date(exported)
            manifest.exported_at = parsed.value if isinstance(parsed.value, datetime) else None
    counts = data.get("counts")
    if isinstance(counts, dict):
        manifest.counts = {str(k): v for k, v in counts.items() if isinstance(v, int)}
    return manifest


def estimate_rows(source: ExportSource, reader: TableReader[R]) -> int:
    """Count a table's lines quickly (bytes, no parsing); an upper bound for progress bars."""
    if reader.member is None:
        return 0
    count = 0
    last = b"\n"
    with source.open(reader.member) as stream:
        while chunk := stream.read(BUFFER):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    count += last != b"\n"
    return max(0, count - (reader.format == "csv"))
