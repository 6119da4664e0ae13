"""A crafted export holding every fault LEGACY_EXPORT.md lists: every record is accounted for."""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from datetime import date, datetime
from pathlib import Path

import pytest

from workflows.legacy import (
    VIETNAM_TZ,
    DuplicateTracker,
    inspect_attachment,
    open_export,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)

BIG_BODY = "Điều 1. Nội dung rất dài của văn bản cũ.\n" * 7500  # ~300k chars > csv's 128 KiB
NFD = unicodedata.normalize("NFD", "Quyết định về việc phê duyệt Sở Tài chính")
BASE = {
    "direction": "den", "number": "12/UBND-VP", "doc_type": "Công văn", "agency": "UBND tỉnh",
    "signed_date": "30/10/2018", "received_date": "31/10/2018", "arrival_number": "1532",
    "subject": "V/v triển khai", "signer": "KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH\nNguyễn Văn A",
    "recipients": "Như trên; Lưu: VT", "urgency": "Thường", "secrecy": "Thường",
    "deadline": "", "status_text": "Đã hoàn thành", "body_text": "",
}  # fmt: skip
DOCS = [
    {"legacy_id": "L-001"},
    {"legacy_id": "L-002", "subject": NFD, "agency": unicodedata.normalize("NFD", "Sở Tư pháp")},
    {"legacy_id": "L-003", "subject": "<b>V/v</b> họp&nbsp;giao ban",
     "body_text": "<p>Điều 1.&nbsp;Phạm vi</p><p>Điều 2. <i>Hiệu lực</i></p>"},
    {"legacy_id": "L-004", "subject": "Trích\x07 yếu\x00 có\x1b ký tự\x7f điều khiển",
     "body_text": "Cột 1\tCột 2\x0cTrang 2"},
    {"legacy_id": "L-005", "signed_date": "5/3/2019", "received_date": "2019-03-06",
     "deadline": "07/03/2019 17:00"},
    {"legacy_id": "L-006", "signed_date": "2019-03-05T08:30:15",
     "received_date": "6/3/2019 8:30:05"},
    {"legacy_id": "L-007", "signed_date": "31/02/2020", "deadline": "30/02/2020 10:00"},
    {"legacy_id": "L-001", "subject": "Bản ghi trùng số hiệu"},
    {"legacy_id": "", "subject": "Không có số hiệu"},
    {"legacy_id": "L-010", "direction": "xyz"},
    {"legacy_id": "L-011", "direction": ""},
    {"legacy_id": "L-012", "body_text": BIG_BODY},
    {"legacy_id": "L-013", "subject": "Dòng 1\nDòng 2",
     "body_text": 'Đoạn 1\r\n\r\nĐoạn 2, có "ngoặc"; và chấm phẩy'},
    {"legacy_id": "L-014", "urgency": "Hoả tốc", "secrecy": "Mật"},
    {"legacy_id": "L-015", "urgency": "Rất khẩn"},
    {"legacy_id": "  L-016 ", "direction": "Nội bộ"},
]  # fmt: skip
DOC_FIELDS = list(BASE)
DOC_HEADER = ["legacy_id", *DOC_FIELDS]
IMPORTABLE = ["L-001", "L-002", "L-003", "L-004", "L-005", "L-006", "L-007", "L-012", "L-013",
              "L-014", "L-015", "L-016"]  # fmt: skip

ATT_HEADER = ["legacy_id", "file", "name", "size", "sha256"]
HIST_HEADER = ["legacy_id", "time", "actor", "unit", "action", "note"]
HISTORY = [
    {"legacy_id": "L-001", "time": "24/07/2019 07:22", "actor": "Trần Thị Bình",
     "unit": "Văn phòng", "action": "Tiếp nhận", "note": "Đã xử lý,\nlưu hồ sơ."},
    {"legacy_id": "L-001", "time": "2019-07-25 09:52:10", "actor": "Võ Minh Đức",
     "unit": "Văn phòng", "action": "Hoàn thành", "note": ""},
    {"legacy_id": "L-002", "time": "25/7/2019", "actor": "A", "unit": "B", "action": "Cho ý kiến",
     "note": "<i>Đề nghị</i> phòng KHTC chủ trì"},
    {"legacy_id": "L-003", "time": "31/02/2019 10:00", "actor": "A", "unit": "B",
     "action": "Chuyển xử lý", "note": ""},
    {"legacy_id": "", "time": "01/01/2020 08:00", "actor": "A", "unit": "B", "action": "X",
     "note": ""},
]  # fmt: skip

# name -> (document format, documents enc/sep, attachments enc/sep, history enc/sep)
VARIANTS = {
    "jsonl": ("jsonl", ("utf-8", ","), ("utf-8-sig", ","), ("cp1258", ";")),
    "csv-cp1258": ("csv", ("cp1258", ";"), ("utf-8", ";"), ("utf-8-sig", ",")),
    "csv-utf8-bom": ("csv", ("utf-8-sig", ","), ("cp1258", ","), ("utf-8", ";")),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_faulty_export(kit, pdf_bytes: bytes, variant: str) -> Path:
    """Write the crafted export for one variant of encodings and separators."""
    doc_format, (doc_enc, doc_sep), (att_enc, att_sep), (hist_enc, hist_sep) = VARIANTS[variant]
    docs = [{**BASE, **d} for d in DOCS]
    members: dict[str, bytes | str] = {
        "manifest.json": '{"system": "iOffice thử", "counts": {"documents": 18}}',
    }
    if doc_format == "jsonl":
        lines = [*docs[:3], "", '{"legacy_id": "L-098", "direction": ', "[1, 2]", *docs[3:]]
        members["documents.jsonl"] = kit.jsonl_text(lines)
    else:
        text = kit.csv_text(DOC_HEADER, docs, doc_sep)
        # A row whose unquoted separator pushes values past the header: rejected.
        text += doc_sep.join(["L-099", "den", "1", "2", *[""] * 13, "tràn cột"]) + "\r\n"
        members["documents.csv"] = kit.encode(text, doc_enc)

    damaged = pdf_bytes[: len(pdf_bytes) // 2]
    encrypted = kit.encrypt_pdf(pdf_bytes, "mat-khau")
    restricted = kit.encrypt_pdf(pdf_bytes, "")
    docx = b"PK\x03\x04 not really a docx but bytes are bytes"
    nfd_name = unicodedata.normalize("NFD", "files/0000/Tờ trình số 5.pdf")
    files = {
        "files/0000/L-001.pdf": pdf_bytes,
        nfd_name: pdf_bytes,
        "files/0000/empty.pdf": b"",
        "files/0000/other.pdf": pdf_bytes + b"\n% altered after export\n",
        "files/0000/damaged.pdf": damaged,
        "files/0000/encrypted.pdf": encrypted,
        "files/0000/restricted.pdf": restricted,
        "files/0001/relative.docx": docx,
        "files/0000/garbage.pdf": b"this is not a PDF at all" * 10,
    }
    members.update(files)
    attachments = [
        ("L-001", "files/0000/L-001.pdf", len(pdf_bytes), sha(pdf_bytes)),  # ok
        ("L-002", "files/0000/Tờ trình số 5.pdf", len(pdf_bytes), sha(pdf_bytes)),  # NFD on disk
        ("L-003", "files/0000/missing.pdf", 100, ""),  # missing
        ("L-004", "files/0000/empty.pdf", 0, sha(b"")),  # empty
        ("L-005", "files/0000/other.pdf", len(pdf_bytes), sha(pdf_bytes)),  # sha mismatch
        ("L-006", "files/0000/damaged.pdf", len(damaged), sha(damaged)),  # damaged
        ("L-007", "files/0000/encrypted.pdf", len(encrypted), sha(encrypted)),  # encrypted
        ("L-013", "files\\0000\\restricted.pdf", len(restricted), ""),  # owner password only
        ("L-014", "0001/relative.docx", len(docx), sha(docx)),  # relative to files/
        ("L-015", "../../etc/passwd", 1, ""),  # unsafe: rejected
        ("", "files/0000/L-001.pdf", len(pdf_bytes), ""),  # no legacy id: rejected
        ("L-012", "FILES/0000/l-001.PDF", "12 KB", "xyz"),  # case, bad size and sha: warnings
        ("L-016", "files/0000/garbage.pdf", 240, ""),  # not a PDF
        ("L-001", "files/0000/L-001.pdf", len(pdf_bytes) + 1, ""),  # size differs, no sha
    ]
    rows = [dict(zip(ATT_HEADER, (i, f, "Tệp đính kèm.pdf", s, h), strict=True))
            for i, f, s, h in attachments]  # fmt: skip
    members["attachments.csv"] = kit.encode(kit.csv_text(ATT_HEADER, rows, att_sep), att_enc)
    members["history.csv"] = kit.encode(kit.csv_text(HIST_HEADER, HISTORY, hist_sep), hist_enc)
    return kit.write(variant, members)


def read_everything(path: Path) -> dict:
    """Read all tables and inspect every attachment, as the importer would."""
    with open_export(path) as source:
        documents = read_documents(source)
        docs = list(documents)
        attachments = list(read_attachments(source))
        checks = [
            None if a.rejected else
            inspect_attachment(source, a.file, expected_size=a.size, expected_sha256=a.sha256)
            for a in attachments
        ]  # fmt: skip
        history_reader = read_history(source)
        history = list(history_reader)
        manifest = read_manifest(source)
        attachment_reader = read_attachments(source)
        list(attachment_reader)
    detected = [(r.encoding, r.delimiter) for r in (documents, attachment_reader, history_reader)]
    return {"documents": docs, "attachments": attachments, "checks": checks,
            "history": history, "manifest": manifest, "detected": detected}  # fmt: skip


@pytest.fixture(scope="module", params=list(VARIANTS))
def faulty(request, tmp_path_factory, kit_class, pdf_bytes):
    """The crafted export of one variant, as a folder and as a zip, both read."""
    kit = kit_class(tmp_path_factory.mktemp("faulty"))
    folder = build_faulty_export(kit, pdf_bytes, request.param)
    zipped = kit.zip(folder, prefix="export-2024/")
    return request.param, read_everything(folder), read_everything(zipped)


def test_encodings_and_separators_are_detected(faulty):
    variant, result, zipped = faulty
    doc_format, *tables = VARIANTS[variant]
    expected = [(enc, sep) for enc, sep in tables]
    if doc_format == "jsonl":
        expected[0] = ("utf-8", None)
    assert result["detected"] == zipped["detected"] == expected


def by_id(rows):
    return {r.legacy_id: r for r in rows if r.legacy_id}


def test_every_document_is_imported_duplicate_or_rejected(faulty):
    variant, result, _ = faulty
    docs = result["documents"]
    tracker = DuplicateTracker()
    imported, duplicates, rejected = [], [], []
    for row in docs:
        if row.rejected:
            rejected.append(row)
        elif problem := tracker.problem(row.legacy_id, row.row):
            duplicates.append((row, problem))
        else:
            imported.append(row)
    total = 18 if variant == "jsonl" else 17
    assert len(docs) == len(imported) + len(duplicates) + len(rejected) == total
    assert [r.legacy_id for r in imported] == IMPORTABLE
    ((dup, problem),) = duplicates
    assert dup.legacy_id == "L-001" and "dòng 1" in problem.reason
    reasons = {r.row: (r.legacy_id, r.problems[0].kind, r.reject_reason) for r in rejected}
    kinds = sorted(kind for _, kind, _ in reasons.values())
    extra = ["malformed_json", "not_an_object"] if variant == "jsonl" else ["extra_columns"]
    assert kinds == sorted(["missing_legacy_id", "invalid_direction", "invalid_direction",
                            *extra])  # fmt: skip
    assert all(reason for _, _, reason in reasons.values())
    entry = next(e for r in rejected for e in r.report() if e["kind"] == "invalid_direction")
    assert set(entry) == {"row", "legacy_id", "kind", "reason", "severity"}
    assert entry["legacy_id"] in ("L-010", "L-011") and entry["severity"] == "reject"
    assert any("Thiếu số hiệu cũ" in r for _, _, r in reasons.values())
    assert any("'xyz' không hợp lệ" in r for _, _, r in reasons.values())
    assert any("Thiếu chiều văn bản" in r for _, _, r in reasons.values())
    assert [r.row for r in docs] == list(range(1, total + 1))


def test_text_is_normalized_and_html_kept(faulty):
    _, result, _ = faulty
    docs = by_id(result["documents"])
    assert docs["L-002"].subject == "Quyết định về việc phê duyệt Sở Tài chính"
    assert docs["L-002"].agency == "Sở Tư pháp"
    assert docs["L-003"].subject == "V/v họp giao ban"
    assert docs["L-003"].body_text == "Điều 1. Phạm vi\n\nĐiều 2. Hiệu lực"
    assert docs["L-003"].html["body_text"].startswith("<p>Điều 1.&nbsp;")
    assert docs["L-004"].subject == "Trích yếu có ký tự điều khiển"
    assert docs["L-004"].body_text == "Cột 1\tCột 2\nTrang 2"
    assert docs["L-013"].subject == "Dòng 1 Dòng 2"
    assert docs["L-013"].body_text == 'Đoạn 1\n\nĐoạn 2, có "ngoặc"; và chấm phẩy'
    assert docs["L-012"].body_text == BIG_BODY.strip() and not docs["L-012"].problems
    assert docs["L-016"].direction == "internal"
    assert docs["L-001"].signer == "KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH\nNguyễn Văn A"
    for row in result["documents"]:
        for name in ("subject", "agency", "body_text", "signer"):
            value = getattr(row, name)
            assert unicodedata.is_normalized("NFC", value), (row.row, name)


def test_dates_labels_and_impossible_dates(faulty):
    _, result, _ = faulty
    docs = by_id(result["documents"])
    assert docs["L-001"].signed_date == date(2018, 10, 30)
    assert docs["L-005"].signed_date == date(2019, 3, 5)
    assert docs["L-005"].received_date == date(2019, 3, 6)
    assert docs["L-005"].deadline == datetime(2019, 3, 7, 17, 0, tzinfo=VIETNAM_TZ)
    assert docs["L-006"].signed_date == datetime(2019, 3, 5, 8, 30, 15, tzinfo=VIETNAM_TZ)
    assert docs["L-006"].received_date == datetime(2019, 3, 6, 8, 30, 5, tzinfo=VIETNAM_TZ)
    bad = docs["L-007"]
    assert not bad.rejected and bad.signed_date is None and bad.deadline is None
    assert bad.unparsed == {"signed_date": "31/02/2020", "deadline": "30/02/2020 10:00"}
    assert [p.kind for p in bad.warnings] == ["invalid_date", "invalid_date"]
    assert "Ngày ký: ngày không tồn tại '31/02/2020'" in bad.warnings[0].reason
    assert (docs["L-014"].urgency, docs["L-014"].secrecy) == (3, 1)
    unknown = docs["L-015"]
    assert unknown.urgency is None and unknown.unparsed == {"urgency": "Rất khẩn"}
    assert unknown.warnings[0].kind == "unknown_label" and not unknown.rejected


def test_every_attachment_is_stored_flawed_missing_or_rejected(faulty):
    _, result, _ = faulty
    pairs = list(zip(result["attachments"], result["checks"], strict=True))
    assert len(pairs) == 14
    outcome = [("rejected" if check is None else check.status) for _, check in pairs]
    assert outcome == [
        "ok", "ok", "missing", "empty", "sha_mismatch", "damaged_pdf", "encrypted_pdf", "ok",
        "ok", "rejected", "rejected", "ok", "damaged_pdf", "size_mismatch",
    ]  # fmt: skip
    rows = [row for row, _ in pairs]
    checks = [check for _, check in pairs]
    assert "../../etc/passwd" in rows[9].reject_reason and rows[9].problems[0].kind == "unsafe_path"
    assert rows[10].problems[0].kind == "missing_legacy_id"
    assert {p.kind for p in rows[11].warnings} == {"invalid_size", "invalid_sha256"}
    assert rows[11].size is None and rows[11].sha256 == ""
    assert rows[7].file == "files/0000/restricted.pdf"
    assert "chuyển đổi số" in checks[0].text and "chuyển đổi số" in checks[1].text
    assert checks[7].notes == ["restricted_pdf"] and "chuyển đổi số" in checks[7].text
    assert not checks[8].is_pdf and checks[8].text == ""
    assert all(c.reasons for c in checks if c is not None and c.status != "ok")
    assert checks[2].size is None and checks[3].size == 0
    # Flawed files were read whole: their bytes can be kept as evidence.
    assert checks[4].sha256 != rows[4].sha256 and checks[5].size == rows[5].size


def test_history_rows(faulty):
    _, result, _ = faulty
    history = result["history"]
    assert len(history) == 5
    first, second, date_only, impossible, no_id = history
    assert first.time == datetime(2019, 7, 24, 7, 22, tzinfo=VIETNAM_TZ)
    assert first.note == "Đã xử lý,\nlưu hồ sơ." and first.actor == "Trần Thị Bình"
    assert second.time == datetime(2019, 7, 25, 9, 52, 10, tzinfo=VIETNAM_TZ)
    assert date_only.time == datetime(2019, 7, 25, tzinfo=VIETNAM_TZ)
    assert date_only.note == "Đề nghị phòng KHTC chủ trì" and "note" in date_only.html
    assert impossible.time is None and impossible.unparsed == {"time": "31/02/2019 10:00"}
    assert not impossible.rejected and no_id.rejected
    assert [h.row for h in history] == [1, 2, 3, 4, 5]


def test_zip_and_folder_give_identical_results(faulty):
    _, folder, zipped = faulty
    for table in ("documents", "attachments", "history"):
        assert [dataclasses.asdict(r) for r in folder[table]] == [
            dataclasses.asdict(r) for r in zipped[table]
        ], table

    def comparable(check):
        if check is None:
            return None
        data = dataclasses.asdict(check)
        data["member"] = data["member"] and unicodedata.normalize("NFC", data["member"])
        return data

    assert [comparable(c) for c in folder["checks"]] == [comparable(c) for c in zipped["checks"]]
    assert folder["manifest"] == zipped["manifest"]
