"""Column mappings: the default, validation messages, and another vendor's export."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest
import yaml

from workflows.legacy import (
    MappingError,
    default_mapping,
    inspect_attachment,
    load_mapping,
    open_export,
    parse_mapping,
    read_attachments,
    read_documents,
    read_history,
)
from workflows.legacy.mapping import DEFAULT_MAPPING_PATH, parse_mapping_text

VENDOR_MAPPING = DEFAULT_MAPPING_PATH.with_name("example_vendor_mapping.yaml")


def default_data():
    return copy.deepcopy(yaml.safe_load(DEFAULT_MAPPING_PATH.read_text(encoding="utf-8")))


def errors_of(data) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_mapping(data, source="test.yaml")
    assert "test.yaml" in str(caught.value)
    return caught.value.errors


def test_default_mapping_covers_every_field():
    mapping = default_mapping()
    assert set(mapping.documents.columns.values()) == {
        "legacy_id", "direction", "number", "doc_type", "agency", "signed_date",
        "received_date", "arrival_number", "subject", "signer", "recipients", "urgency",
        "secrecy", "deadline", "status_text", "body_text",
    }  # fmt: skip
    assert mapping.documents.files == ("documents.jsonl", "documents.csv")
    assert set(mapping.attachments.columns.values()) == {
        "legacy_id",
        "file",
        "name",
        "size",
        "sha256",
    }
    assert set(mapping.history.columns.values()) == {
        "legacy_id",
        "time",
        "actor",
        "unit",
        "action",
        "note",
    }
    assert mapping.map_value("direction", "noi_bo") == "internal"
    assert mapping.map_value("urgency", "Hoả tốc") == 3  # old-style tone placement
    assert mapping.map_value("secrecy", "TỐI MẬT") == 2
    assert mapping.limit("body_text") == 2_000_000 and mapping.limit("subject") == 20000


def test_load_mapping_without_path_is_the_default():
    assert load_mapping() is default_mapping()


def test_json_mapping_file_is_accepted(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(default_data(), ensure_ascii=False), encoding="utf-8")
    assert load_mapping(path).documents.columns == default_mapping().documents.columns


def test_unknown_target_field_is_named_in_vietnamese():
    data = default_data()
    data["documents"]["columns"]["so_den"] = "arrival_no"
    (error,) = errors_of(data)
    assert "cột nguồn 'so_den' trỏ tới trường 'arrival_no' không tồn tại" in error
    assert "arrival_number" in error  # lists the valid fields


def test_missing_legacy_id_is_refused_for_each_table():
    data = default_data()
    del data["documents"]["columns"]["legacy_id"]
    del data["history"]["columns"]["legacy_id"]
    errors = errors_of(data)
    assert any("documents (văn bản)" in e and "'legacy_id'" in e for e in errors)
    assert any("history (lịch sử xử lý)" in e and "'legacy_id'" in e for e in errors)


def test_field_fed_by_two_columns_is_refused():
    data = default_data()
    data["documents"]["columns"]["ma_vb"] = "legacy_id"
    assert any("được ánh xạ từ nhiều cột" in e for e in errors_of(data))


def test_bad_values_defaults_and_options_are_all_reported_at_once():
    data = default_data()
    data["values"]["direction"]["den"] = "inbound"
    data["values"]["urgency"]["Khẩn"] = 7
    data["values"]["urgency"]["THUONG KHAN"] = 3  # "Thượng khẩn" once folded, other level
    data["defaults"]["direction"] = "sideways"
    data["csv"]["delimiter"] = "#"
    data["timezone"] = "Asia/Hanoi"
    data["limits"]["body_text"] = -1
    data["unknown_key"] = 1
    errors = errors_of(data)
    assert len(errors) == 8, errors
    text = "\n".join(errors)
    for fragment in (
        "nhãn 'den' trỏ tới 'inbound'",
        "nhãn 'Khẩn' phải ứng với mức 0, 1, 2 hoặc 3",
        "giống nhau khi bỏ dấu",
        "direction chỉ nhận",
        "csv.delimiter",
        "timezone",
        "'body_text' phải là số nguyên dương",
        "Khóa không được hỗ trợ: unknown_key",
    ):
        assert fragment in text


def test_direction_needs_a_column_or_a_default():
    data = default_data()
    del data["documents"]["columns"]["direction"]
    assert any("'defaults.direction'" in e for e in errors_of(data))
    data["defaults"]["direction"] = "incoming"
    assert parse_mapping(data).defaults["direction"] == "incoming"


def test_documents_section_is_required_and_text_must_parse():
    assert any("Thiếu mục 'documents'" in e for e in errors_of({"name": "x"}))
    with pytest.raises(MappingError, match="Không đọc được YAML"):
        parse_mapping_text("documents: [unclosed")
    with pytest.raises(MappingError, match="Không mở được tệp ánh xạ"):
        load_mapping("/nonexistent/mapping.yaml")


def test_a_partial_mapping_inherits_values_from_the_default():
    data = {
        "documents": {"files": "docs.jsonl", "columns": {"ID": "legacy_id", "Chieu": "direction"}}
    }
    mapping = parse_mapping(data)
    assert mapping.documents.files == ("docs.jsonl",)
    assert mapping.map_value("direction", "di") == "outgoing"
    assert mapping.attachments.files == ("attachments.csv",)


# Another vendor ----------------------------------------------------------------------------------

VENDOR_DOCS = [
    {
        "Mã văn bản": "ED-001", "Loại sổ": "Văn bản đến", "Số ký hiệu": "15/UBND-VX",
        "Loại văn bản": "Công văn", "Cơ quan ban hành": "UBND tỉnh", "Ngày văn bản": "2/1/2024",
        "Ngày đến": "2024-01-03 08:15", "Số đến": "12", "Trích yếu": "V/v báo cáo",
        "Người ký": "Nguyễn Văn A", "Nơi nhận": "Sở Y tế\nSở Tài chính",
        "Độ khẩn": "Hỏa tốc hẹn giờ", "Độ mật": "Không mật", "Hạn xử lý": "10/01/2024",
        "Tình trạng": "Đã xử lý", "Nội dung": "Nội dung đầy đủ", "Cột riêng": "giữ lại",
    },
    {"Mã văn bản": "ED-002", "Loại sổ": "Văn bản nội bộ", "Độ khẩn": "", "Độ mật": "Mật"},
]  # fmt: skip


def test_vendor_mapping_reads_another_layout_without_code(kit, pdf_bytes):
    mapping = load_mapping(VENDOR_MAPPING)
    doc_header = [*mapping.documents.columns, "Cột riêng"]
    members = {
        "VanBan.csv": kit.encode(kit.csv_text(doc_header, VENDOR_DOCS, ";"), "cp1258"),
        "DinhKem.csv": kit.encode(
            kit.csv_text(
                list(mapping.attachments.columns),
                [
                    {
                        "Mã văn bản": "ED-001",
                        "Đường dẫn": "2024/ED-001.pdf",
                        "Tên tệp": "Công văn.pdf",
                        "Dung lượng": str(len(pdf_bytes)),
                    }
                ],
                ";",
            ),
            "utf-8-sig",
        ),
        "NhatKy.csv": kit.csv_text(
            list(mapping.history.columns),
            [
                {
                    "Mã văn bản": "ED-001",
                    "Thời điểm": "03/01/2024 09:00",
                    "Cán bộ": "Lê B",
                    "Phòng ban": "Văn phòng",
                    "Hành động": "Tiếp nhận",
                    "Ý kiến": "",
                }
            ],
            ";",
        ),
        "TepDinhKem/2024/ED-001.pdf": pdf_bytes,
    }
    folder = kit.write("vendor", members)
    with open_export(folder, mapping.documents.files) as source:
        docs = list(read_documents(source, mapping))
        attachments = list(read_attachments(source, mapping))
        history = list(read_history(source, mapping))
        check = inspect_attachment(
            source, attachments[0].file, expected_size=attachments[0].size,
            files_dir=mapping.files_dir,
        )  # fmt: skip
    first, second = docs
    assert not first.problems and not second.problems
    assert (first.legacy_id, first.direction, first.number) == ("ED-001", "incoming", "15/UBND-VX")
    assert first.signed_date == date(2024, 1, 2) and first.deadline == date(2024, 1, 10)
    assert first.received_date.hour == 8 and first.recipients == ["Sở Y tế", "Sở Tài chính"]
    assert (first.urgency, first.secrecy) == (3, 0)
    assert first.extra == {"Cột riêng": "giữ lại"}
    assert (second.direction, second.urgency, second.secrecy) == ("internal", 0, 1)
    assert attachments[0].legacy_id == "ED-001" and history[0].action == "Tiếp nhận"
    assert check.status == "ok" and "chuyển đổi số" in check.text


def test_vendor_export_with_default_mapping_is_refused(kit):
    folder = kit.write("vendor", {"VanBan.csv": "Mã văn bản\nED-1\n"})
    with pytest.raises(Exception, match="không phải bản xuất dữ liệu"):
        open_export(folder)
