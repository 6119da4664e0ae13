"""The streaming reader: numbering, resuming, headers, odd values, sources."""

from __future__ import annotations

import json
import zipfile

import pytest

from workflows.legacy import (
    DuplicateTracker,
    ExportError,
    estimate_rows,
    open_export,
    parse_mapping,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)
from workflows.legacy.text import encode_cp1258

HEADER = "legacy_id,direction,subject,body_text\r\n"


def docs_of(path, **kwargs):
    with open_export(path) as source:
        reader = read_documents(source, **kwargs)
        return reader, list(reader)


def test_csv_rows_and_lines_with_quoted_newlines(kit):
    text = (
        HEADER
        + 'A1,den,"Trích\r\nyếu",x\r\n'
        + "\r\n"  # blank line: not a record
        + 'A2,di,b,"đoạn 1\r\n\r\nđoạn 2"\r\n'
        + "A3,noi_bo,c,d\r\n"
    )
    reader, rows = docs_of(kit.write("e", {"documents.csv": text}))
    assert [(r.legacy_id, r.row, r.line) for r in rows] == [
        ("A1", 1, 2),
        ("A2", 2, 5),
        ("A3", 3, 8),
    ]
    assert rows[1].body_text == "đoạn 1\n\nđoạn 2" and rows[0].subject == "Trích yếu"
    assert reader.header == ["legacy_id", "direction", "subject", "body_text"]
    assert reader.rows_read == 3 and reader.delimiter == "," and reader.encoding == "utf-8"


def test_start_after_skips_converting_but_keeps_numbers(kit):
    lines = [json.dumps({"legacy_id": f"D{i}", "direction": "den"}) for i in range(1, 6)]
    folder = kit.write("e", {"documents.jsonl": "\n".join([*lines[:2], "", *lines[2:]]) + "\n"})
    reader, rows = docs_of(folder, start_after=3)
    assert [(r.legacy_id, r.row, r.line) for r in rows] == [("D4", 4, 5), ("D5", 5, 6)]
    assert reader.rows_read == 5
    csv_folder = kit.write("c", {"documents.csv": HEADER + "".join(
        f"C{i},den,s,b\r\n" for i in range(1, 6))})  # fmt: skip
    _, rows = docs_of(csv_folder, start_after=4)
    assert [(r.legacy_id, r.row) for r in rows] == [("C5", 5)]


def test_estimate_rows_counts_lines_without_parsing(kit):
    folder = kit.write("e", {"documents.csv": HEADER + "A,den,s,b\r\nB,den,s,b"})
    with open_export(folder) as source:
        assert estimate_rows(source, read_documents(source)) == 2
        assert estimate_rows(source, read_history(source)) == 0  # no history.csv


def test_header_matching_is_tolerant_and_reports_missing_columns(kit):
    text = "\ufeffLegacy ID;DIRECTION;Subject;note;note\r\nA1;Đến;Việc;x;y\r\n"
    mapping = parse_mapping({
        "documents": {"files": "documents.csv", "columns": {
            "legacy_id": "legacy_id", "direction": "direction", "subject": "subject",
            "signer": "signer"}},
        "values": {"direction": {"Đến": "incoming"}},
    })  # fmt: skip
    reader, (row,) = docs_of(kit.write("e", {"documents.csv": text}), mapping=mapping)
    assert (row.legacy_id, row.direction, row.subject) == ("A1", "incoming", "Việc")
    assert reader.header == ["Legacy ID", "DIRECTION", "Subject", "note", "note#2"]
    assert row.extra == {"note": "x", "note#2": "y"}
    ((problem),) = reader.problems
    assert problem.kind == "missing_column" and "'signer'" in problem.reason


def test_jsonl_values_of_any_type_and_nested_paths(kit):
    record = {"legacy_id": 4711, "direction": "di", "arrival_number": 1532.0,
              "recipients": ["Sở A", " Sở B ", ""], "subject": None, "urgency": "KHẨN",
              "meta": {"so": "12/QĐ"}, "flag": True}  # fmt: skip
    mapping = parse_mapping({"documents": {"files": "documents.jsonl", "columns": {
        "legacy_id": "legacy_id", "direction": "direction", "arrival_number": "arrival_number",
        "recipients": "recipients", "subject": "subject", "urgency": "urgency",
        "meta.so": "number"}}})  # fmt: skip
    _, (row,) = docs_of(kit.write("e", {"documents.jsonl": json.dumps(record)}), mapping=mapping)
    assert (row.legacy_id, row.arrival_number, row.number) == ("4711", "1532", "12/QĐ")
    assert row.recipients == ["Sở A", "Sở B"] and row.subject == "" and row.urgency == 1
    assert row.extra == {"meta": '{"so": "12/QĐ"}', "flag": "true"}
    assert not row.problems


def test_jsonl_line_in_windows_1258_is_read_with_a_warning(kit):
    good = json.dumps({"legacy_id": "A", "direction": "den"}, ensure_ascii=False)
    bad = encode_cp1258(json.dumps({"legacy_id": "B", "direction": "den", "subject": "Mật"},
                                   ensure_ascii=False))  # fmt: skip
    folder = kit.write("e", {"documents.jsonl": b"\xef\xbb\xbf" + good.encode() + b"\n" + bad})
    reader, (a, b) = docs_of(folder)
    assert not a.problems and b.subject == "Mật" and b.problems[0].kind == "encoding_fallback"
    assert reader.encoding == "utf-8-sig"


def test_csv_line_in_the_other_encoding_is_flagged_on_its_row(kit):
    data = (HEADER + "A,den,Hà Nội,x\r\n").encode() + encode_cp1258("B,den,Đà Nẵng,y\r\n")
    reader, (a, b) = docs_of(kit.write("e", {"documents.csv": data}))
    assert b.subject == "Đà Nẵng" and [p.kind for p in b.problems] == ["encoding_fallback"]
    assert not a.problems and reader.encoding == "mixed"


def test_utf16_csv_is_read(kit):
    data = (HEADER + "A,den,Hỏa tốc,x\r\n").encode("utf-16")
    reader, (row,) = docs_of(kit.write("e", {"documents.csv": data}))
    assert row.subject == "Hỏa tốc" and reader.encoding == "utf-16"


def test_text_over_the_limit_is_cut_with_a_warning(kit):
    mapping = parse_mapping({
        "documents": {"files": ["documents.csv"], "columns": {
            "legacy_id": "legacy_id", "direction": "direction", "body_text": "body_text"}},
        "limits": {"body_text": 10},
    })  # fmt: skip
    folder = kit.write("e", {"documents.csv": HEADER + "A,den,s," + "x" * 50 + "\r\n"})
    _, (row,) = docs_of(folder, mapping=mapping)
    assert row.body_text == "x" * 10 and not row.rejected
    assert row.warnings[0].kind == "truncated" and "dài 50 ký tự" in row.warnings[0].reason
    assert row.raw["body_text"] == "x" * 50  # the raw row still has everything


def test_default_direction_for_an_export_without_that_column(kit):
    mapping = parse_mapping({
        "documents": {"files": "documents.csv", "columns": {"legacy_id": "legacy_id"}},
        "defaults": {"direction": "incoming"},
    })  # fmt: skip
    _, (row,) = docs_of(kit.write("e", {"documents.csv": "legacy_id\r\nA\r\n"}), mapping=mapping)
    assert row.direction == "incoming" and not row.problems


def test_history_and_attachments_are_optional(kit):
    folder = kit.write("e", {"documents.csv": HEADER})
    with open_export(folder) as source:
        reader = read_attachments(source)
        assert reader.member is None and list(reader) == [] and list(read_history(source)) == []
        assert list(read_documents(source)) == []


def test_manifest_missing_or_broken_is_a_problem_not_a_crash(kit):
    with open_export(kit.write("a", {"documents.csv": HEADER})) as source:
        manifest = read_manifest(source)
    assert not manifest.present and manifest.problems[0].kind == "missing_manifest"
    with open_export(kit.write("b", {"manifest.json": "{oops", "documents.csv": HEADER})) as source:
        manifest = read_manifest(source)
    assert not manifest.present and manifest.problems[0].kind == "malformed_manifest"


def test_open_export_errors_are_vietnamese(kit, tmp_path):
    with pytest.raises(ExportError, match="Không tìm thấy"):
        open_export(tmp_path / "nope")
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"hello")
    with pytest.raises(ExportError, match="Không mở được tệp zip"):
        open_export(not_zip)
    with pytest.raises(ExportError, match="không phải bản xuất dữ liệu"):
        open_export(kit.write("empty", {"readme.txt": "x"}))


def test_folder_holding_the_export_in_one_subfolder(kit):
    folder = kit.write("outer", {"export-2024/documents.csv": HEADER + "A,den,s,b\r\n"})
    _, rows = docs_of(folder)
    assert [r.legacy_id for r in rows] == ["A"]


def test_zip_members_are_streams_and_names_tolerant(kit, tmp_path):
    path = tmp_path / "e.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Export\\documents.csv", HEADER + "A,den,s,b\r\n")  # Windows separators
        zf.writestr("Export\\files\\Tờ trình.PDF", b"%PDF-1.4")
    with open_export(path) as source:
        assert source.kind == "zip" and source.resolve("files/tờ trình.pdf")
        assert source.resolve("../Export/documents.csv") is None
        assert [r.legacy_id for r in read_documents(source)] == ["A"]


def test_duplicate_tracker_points_at_the_first_row_and_tolerates_rereads():
    tracker = DuplicateTracker()
    assert tracker.problem("A", 1) is None
    assert tracker.problem("A", 1) is None  # the same row read again after a resume
    problem = tracker.problem("A", 7)
    assert problem.kind == "duplicate" and "dòng 1" in problem.reason and len(tracker) == 1
