"""Each text, encoding and date rule of the legacy reader, on its own."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from workflows.legacy.dates import VIETNAM_TZ, as_datetime, parse_date
from workflows.legacy.text import (
    DecodeStats,
    clean_text,
    decode_lines,
    detect_encoding,
    encode_cp1258,
    fold_key,
    html_to_text,
    looks_like_html,
    remove_control_chars,
    sniff_delimiter,
    to_nfc,
)

VIET = "Quyết định về việc phê duyệt kế hoạch ứng dụng công nghệ thông tin, Hỏa tốc"


# Encodings ---------------------------------------------------------------------------------


def test_detect_utf8_with_and_without_bom():
    assert detect_encoding(b"\xef\xbb\xbf" + VIET.encode()) == "utf-8-sig"
    assert detect_encoding(VIET.encode()) == "utf-8"
    assert detect_encoding(b"legacy_id,time\n") == "utf-8"


def test_detect_utf8_cut_in_the_middle_of_a_character():
    data = VIET.encode()
    cut = data.index("ế".encode()) + 1  # inside the 3-byte sequence of "ế"
    assert detect_encoding(data[:cut]) == "utf-8"


def test_detect_windows_1258():
    data = encode_cp1258(VIET)
    assert detect_encoding(data) == "cp1258"


def test_cp1258_writes_base_letter_plus_combining_tone_mark():
    data = encode_cp1258("Quyết")
    # "ế" becomes "ê" (0xEA) followed by the combining acute accent (0xEC).
    assert data == b"Quy\xea\xect"
    decoded = data.decode("cp1258")
    assert decoded != "Quyết" and unicodedata.normalize("NFC", decoded) == "Quyết"


def test_decode_lines_windows_1258_gives_nfc_after_cleaning():
    lines = encode_cp1258(f"a;b\r\n{VIET};x\r\n").splitlines(keepends=True)
    stats = DecodeStats()
    decoded = list(decode_lines(lines, stats))
    assert stats.encoding == "cp1258" and stats.effective == "cp1258"
    assert decoded[0] == "a;b\r\n"
    assert clean_text(decoded[1]).text == f"{VIET};x"


def test_decode_lines_strips_bom_and_keeps_line_ends():
    lines = [b"\xef\xbb\xbflegacy_id,note\n", "1,Đã xử lý\n".encode()]
    stats = DecodeStats()
    assert list(decode_lines(lines, stats)) == ["legacy_id,note\n", "1,Đã xử lý\n"]
    assert stats.encoding == "utf-8-sig"


def test_decode_lines_falls_back_per_line_and_records_it():
    lines = ["x,Hà Nội\n".encode(), encode_cp1258("y,Đà Nẵng\n")]
    stats = DecodeStats()
    out = list(decode_lines(lines, stats))
    assert to_nfc(out[1]) == "y,Đà Nẵng\n"
    assert stats.fallback_lines == [2] and stats.effective == "mixed"


def test_decode_lines_forced_encoding():
    stats = DecodeStats()
    out = list(decode_lines([encode_cp1258("Mật\n")], stats, encoding="cp1258"))
    assert to_nfc(out[0]) == "Mật\n" and stats.encoding == "cp1258"


def test_decode_lines_drops_nul_bytes():
    assert list(decode_lines([b"a\x00b\n"])) == ["ab\n"]


# Separators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("legacy_id,direction,number", ","),
        ("legacy_id;direction;number", ";"),
        ('"a,b";c;d', ";"),  # a comma inside quotes does not count
        ("legacy_id\tdirection", "\t"),
        ("legacy_id", ","),
    ],
)
def test_sniff_delimiter(header, expected):
    assert sniff_delimiter(header) == expected


# Unicode, control characters, HTML --------------------------------------------------------------


def test_nfd_becomes_nfc():
    nfd = unicodedata.normalize("NFD", VIET)
    assert nfd != VIET
    assert to_nfc(nfd) == VIET
    assert clean_text(nfd).text == VIET


def test_control_characters_removed_but_tab_and_newline_kept():
    value = "Trích\x07 yếu\x00\tcột\r\ndòng\x0bmới\x1b\x7f\x85\ufeff"
    assert remove_control_chars(value) == "Trích yếu\tcột\ndòng\nmới"


def test_lone_carriage_returns_become_newlines():
    assert remove_control_chars("a\rb\r\nc") == "a\nb\nc"


@pytest.mark.parametrize(
    "value",
    ["<p>Điều 1</p>", "Điều&nbsp;1", "a<br/>b", "x &#273; y", "<!-- c -->x", "<B>Hỏa tốc</B>"],
)
def test_looks_like_html(value):
    assert looks_like_html(value)


@pytest.mark.parametrize(
    "value", ["5648/VNPT-VP-IT&VAS", "a < b và c > d", "Lưu: VT", "R&D", "x<y"]
)
def test_plain_text_is_not_html(value):
    assert not looks_like_html(value)


def test_html_to_text_keeps_paragraphs_and_decodes_entities():
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<p>Điều 1.&nbsp;Phạm vi</p><p>Văn bản <b>này</b> áp dụng&hellip;<br>Dòng 2</p>"
        "<script>alert(1)</script><ul><li>Mục a</li><li>Mục &#273;</li></ul></body></html>"
    )
    assert html_to_text(html) == "Điều 1. Phạm vi\n\nVăn bản này áp dụng…\nDòng 2\n\nMục a\nMục đ"


def test_clean_text_keeps_the_raw_html():
    cleaned = clean_text("<p>Kính gửi:  Sở&nbsp;Tư pháp</p>")
    assert cleaned.text == "Kính gửi: Sở Tư pháp"
    assert cleaned.html == "<p>Kính gửi:  Sở&nbsp;Tư pháp</p>"
    assert clean_text("không có thẻ").html is None


def test_clean_text_single_line_collapses_whitespace():
    assert clean_text("  V/v  triển khai\n hệ thống ", single_line=True).text == (
        "V/v triển khai hệ thống"
    )
    assert clean_text("Dòng 1\nDòng 2\n").text == "Dòng 1\nDòng 2"


def test_fold_key_ignores_case_diacritics_and_separators():
    assert fold_key("Hỏa tốc") == fold_key("Hoả tốc") == fold_key("HOA TOC") == "hoa toc"
    assert fold_key("noi_bo") == fold_key("Nội bộ") == "noi bo"
    assert fold_key("Đến") == "den"


# Dates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/10/2018", date(2018, 10, 30)),
        ("5/3/2019", date(2019, 3, 5)),
        ("05/3/2019", date(2019, 3, 5)),
        ("2019-03-05", date(2019, 3, 5)),
        ("05-03-2019", date(2019, 3, 5)),
        ("05.03.2019", date(2019, 3, 5)),
        (" 30/10/2018 ", date(2018, 10, 30)),
        ("29/02/2020", date(2020, 2, 29)),
    ],
)
def test_dates_without_time(text, expected):
    parsed = parse_date(text)
    assert parsed.value == expected and type(parsed.value) is date and parsed.problem is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24/07/2019 07:22", datetime(2019, 7, 24, 7, 22, tzinfo=VIETNAM_TZ)),
        ("24/7/2019 7:22:05", datetime(2019, 7, 24, 7, 22, 5, tzinfo=VIETNAM_TZ)),
        ("2019-07-24 07:22", datetime(2019, 7, 24, 7, 22, tzinfo=VIETNAM_TZ)),
        ("2019-07-24T07:22:05", datetime(2019, 7, 24, 7, 22, 5, tzinfo=VIETNAM_TZ)),
        ("2019-07-24T07:22:05.5", datetime(2019, 7, 24, 7, 22, 5, 500000, tzinfo=VIETNAM_TZ)),
        ("2019-07-24T00:22:05Z", datetime(2019, 7, 24, 0, 22, 5, tzinfo=UTC)),
        (
            "2019-07-24T07:22:05+09:00",
            datetime(2019, 7, 24, 7, 22, 5, tzinfo=timezone(timedelta(hours=9))),
        ),
        ("07:22 24/07/2019", datetime(2019, 7, 24, 7, 22, tzinfo=VIETNAM_TZ)),
        ("24/07/2019 07h22", datetime(2019, 7, 24, 7, 22, tzinfo=VIETNAM_TZ)),
    ],
)
def test_dates_with_time_are_aware(text, expected):
    parsed = parse_date(text)
    assert parsed.value == expected and parsed.problem is None
    assert parsed.value.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("31/02/2020", "ngày không tồn tại"),
        ("29/02/2019", "ngày không tồn tại"),
        ("13/13/2020", "ngày không tồn tại"),
        ("2020-02-30", "ngày không tồn tại"),
        ("12/05/2020 25:10", "giờ không hợp lệ"),
        ("12/05/2020 10:61", "giờ không hợp lệ"),
        ("12/05/0202", "nằm ngoài khoảng"),
        ("12/05/20", "không nhận dạng"),
        ("ngày 12 tháng 5", "không nhận dạng"),
    ],
)
def test_impossible_dates_keep_text_and_say_why(text, fragment):
    parsed = parse_date(text)
    assert parsed.value is None
    assert parsed.text == text
    assert fragment in parsed.problem


def test_empty_date_is_not_a_problem():
    assert parse_date("  ") == parse_date("")
    assert parse_date("").value is None and parse_date("").problem is None


def test_as_datetime_widens_dates_to_midnight():
    assert as_datetime(date(2020, 1, 2)) == datetime(2020, 1, 2, tzinfo=VIETNAM_TZ)
    moment = datetime(2020, 1, 2, 3, 4, tzinfo=VIETNAM_TZ)
    assert as_datetime(moment) is moment and as_datetime(None) is None
