"""Vietnamese ranking: exact forms first, folded forms after, numbers and ids first, snippets."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from search_index import searcher


@pytest.fixture
def path(tmp_path: Path, record: Callable[..., Any]) -> Path:
    from search_index import writer

    docs = [
        record("ban-do", "Bản đồ địa giới hành chính", "bản đồ tỷ lệ 1:10.000"),
        record("ban-hang", "Quy định bán hàng lưu động", "bán hàng tại chợ"),
        record("ban-bien-tap", "Thành lập Ban biên tập", "ban biên tập tập san"),
        record("duong", "Đường giao thông nông thôn", "đường liên xã"),
        record(
            "nd70",
            "Nghị định quy định về quản lý văn bản",
            "số 70/2018/NĐ-CP ngày 15 tháng 5",
            number="70/2018/NĐ-CP",
            legacy_id="488397-VBĐT",
            issued_on=date(2018, 5, 15),
        ),
        record(
            "nd71",
            "Nghị định sửa đổi",
            "sửa đổi Nghị định số 70/2018/NĐ-CP về văn bản",
            number="71/2018/NĐ-CP",
            issued_on=date(2018, 6, 1),
        ),
        record(
            "qd",
            "Quyết định phê duyệt kế hoạch",
            "phê duyệt kế hoạch năm",
            migrated=True,
            issued_on=date(2015, 1, 5),
        ),
    ]
    path = tmp_path / "ix"
    writer.index_documents(path, docs)
    return path


def _ids(path: Path, text: str, **kwargs: object) -> list[str]:
    result = searcher.search(path, text, principals=["all"], **kwargs)  # type: ignore[arg-type]
    return [h["id"] for h in result["hits"]]


def test_typed_with_diacritics_exact_form_ranks_before_folded_forms(path: Path) -> None:
    # "bản" is in "Bản đồ" and in "văn bản" (nd70, nd71); "bán" and "Ban" only fold to it.
    ids = _ids(path, "bản")
    assert ids[0] == "ban-do"
    assert set(ids[:3]) == {"ban-do", "nd70", "nd71"}
    assert set(ids[3:]) == {"ban-hang", "ban-bien-tap"}
    assert _ids(path, "bán")[0] == "ban-hang"
    assert _ids(path, "Ban biên")[0] == "ban-bien-tap"


def test_typed_without_diacritics_matches_folded_forms(path: Path) -> None:
    assert set(_ids(path, "ban")) == {"ban-do", "ban-hang", "ban-bien-tap", "nd70", "nd71"}
    assert _ids(path, "ban do")[0] == "ban-do"
    assert _ids(path, "duong giao thong") == ["duong"]
    assert _ids(path, "quyet dinh phe duyet")[0] == "qd"


def test_nfd_and_nfc_queries_give_the_same_hits(path: Path) -> None:
    text = "Đường giao thông"
    assert _ids(path, unicodedata.normalize("NFD", text)) == _ids(path, text) == ["duong"]


@pytest.mark.parametrize(
    "text",
    [
        "70/2018/NĐ-CP",
        "70/2018/ND-CP",
        "70/2018/nd-cp",
        "70/2018",
        "so:70/2018",
        "488397-VBĐT",
        "488397-VBDT",
        "488397",
    ],
)
def test_numbers_and_legacy_ids_find_their_document_first(path: Path, text: str) -> None:
    assert _ids(path, text)[0] == "nd70"


def test_highlights_mark_matches_and_escape_html(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    from search_index import writer

    doc = record("x", "Tờ trình <b>mới</b>", "Đề nghị phê duyệt kinh phí & nhân sự")
    writer.index_documents(tmp_path / "ix", [doc])
    hit = searcher.search(tmp_path / "ix", "phe duyet moi", principals=["all"])["hits"][0]
    assert "<mark>phê</mark> <mark>duyệt</mark>" in hit["highlights"][0]
    assert "&amp;" in hit["highlights"][0]
    assert hit["title_html"] == "Tờ trình &lt;b&gt;<mark>mới</mark>&lt;/b&gt;"
    texts = {"x": "Văn bản đầy đủ: đề nghị phê duyệt nhân sự"}
    loaded = searcher.search(tmp_path / "ix", "phê duyệt", principals=["all"], load_text=texts.get)[
        "hits"
    ][0]
    assert loaded["highlights"] == [
        "Văn bản đầy đủ: đề nghị <mark>phê</mark> <mark>duyệt</mark> nhân sự"
    ]


def test_sort_by_date_puts_recent_documents_first(path: Path) -> None:
    assert _ids(path, "nghị định", sort="date") == ["nd71", "nd70"]
    assert _ids(path, "", sort="date", limit=10)[-3:] == ["nd71", "nd70", "qd"]


def test_hits_carry_the_api_fields(path: Path) -> None:
    hit = searcher.search(path, "70/2018/NĐ-CP", principals=["all"])["hits"][0]
    assert {"id", "legacy_id", "number", "title", "score", "highlights"} <= hit.keys()
    assert (hit["number"], hit["legacy_id"]) == ("70/2018/NĐ-CP", "488397-VBĐT")
    assert hit["score"] > 0


def test_snippet_falls_back_to_the_opening_when_the_body_has_no_match(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    from search_index import writer

    writer.index_documents(tmp_path / "ix", [record("x", "Kế hoạch năm", "Nội dung <đầu> " * 40)])
    hit = searcher.search(tmp_path / "ix", "kế hoạch", principals=["all"])["hits"][0]
    assert hit["highlights"][0].startswith("Nội dung &lt;đầu&gt; Nội dung")
    assert "<mark>" in hit["title_html"]


def test_fragments_mark_every_case_and_diacritic_form_of_a_folded_word() -> None:
    from search_index import highlight

    text = "THÔNG TƯ số 5; Thông tư; thong tu; thông tin; hoá đơn, hóa đơn, HOÁ ĐƠN"
    marked = highlight.fragments(text, set(), {"thong", "tu", "hoa", "don"}, size=400)[0]
    assert marked.count("<mark>") == 13
    assert "<mark>THÔNG</mark> <mark>TƯ</mark>" in marked
    assert "<mark>thông</mark> tin" in marked
    assert "<mark>hoá</mark> <mark>đơn</mark>, <mark>hóa</mark> <mark>đơn</mark>" in marked
    assert highlight.fragments(text, {"hóa"}, {"hoa"}, weights={"hoa": 1.0})[0].count("<mark>") == 3


def test_attachment_text_scores_as_the_body_would(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    """Text from attachments is its own field, found and scored like body text."""
    from search_index import writer

    writer.index_documents(
        tmp_path,
        [
            record("body", "Công văn", "lịch tiếp công dân tháng 3"),
            record("attached", "Công văn", "lịch", attachment_text="tiếp công dân tháng 3"),
            record("other", "Thông báo", "nghỉ lễ"),
        ],
    )
    result = searcher.search(tmp_path, "tiếp công dân", principals=["all"])
    scores = {hit["id"]: hit["score"] for hit in result["hits"]}
    assert scores.keys() == {"body", "attached"}
    # Only the length differs by one: no pair spans the body and the attachment.
    assert scores["body"] == pytest.approx(scores["attached"], rel=0.03)
