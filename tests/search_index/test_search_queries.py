"""Bad input gives a result or a Vietnamese message, never a crash or an unbounded scan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search_index import query, searcher
from search_index.errors import SearchQueryError


@pytest.fixture
def path(tmp_path: Path, record: Callable[..., Any]) -> Path:
    from search_index import writer

    docs = [
        record(
            "d1",
            "Quyết định phê duyệt dự toán",
            "phê duyệt dự toán ngân sách 2024",
            doc_type="Quyết định",
        ),
        record("d2", "Công văn về dự toán", "đề nghị điều chỉnh dự toán", doc_type="Công văn"),
        record("d3", "Thông báo nghỉ lễ", "nghỉ lễ quốc khánh", year=2023),
    ]
    path = tmp_path / "ix"
    writer.index_documents(path, docs)
    return path


def _search(path: Path, text: str, **kwargs: object) -> dict:
    return searcher.search(path, text, principals=["all"], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "   ", "*"])
def test_empty_query_or_star_browses_every_visible_document(path: Path, text: str) -> None:
    result = _search(path, text)
    assert result["total"] == 3
    assert {h["id"] for h in result["hits"]} == {"d1", "d2", "d3"}


@pytest.mark.parametrize("text", ["!!!", "?.,;:", "-", '"', '""', "***", "()"])
def test_only_punctuation_is_a_typed_error_in_vietnamese(path: Path, text: str) -> None:
    with pytest.raises(SearchQueryError) as err:
        _search(path, text)
    assert "từ khóa" in err.value.message_vi


def test_a_5000_character_query_is_refused_with_a_message(path: Path) -> None:
    with pytest.raises(SearchQueryError) as err:
        _search(path, "dự toán " * 700)
    assert "quá dài" in err.value.message_vi


def test_long_question_under_the_limit_uses_a_bounded_number_of_words() -> None:
    parsed = query.parse(" ".join(f"từ{i}" for i in range(150)))
    assert len(parsed.words) == query.MAX_WORDS


@pytest.mark.parametrize("text", ['"phê duyệt dự toán', 'dự toán"', '"dự toán" "', "phê (duyệt"])
def test_unbalanced_quotes_and_brackets_still_search(path: Path, text: str) -> None:
    result = _search(path, text)
    assert result["hits"] and result["hits"][0]["id"] in {"d1", "d2"}


def test_unknown_field_prefix_is_searched_as_words(path: Path) -> None:
    result = _search(path, "tieude:phê duyệt")
    assert result["hits"][0]["id"] == "d1"
    assert _search(path, "năm:2023")["total"] == 1
    assert _search(path, "foo:")["total"] >= 0


def test_quoted_phrase_requires_the_syllable_pairs(path: Path) -> None:
    assert {h["id"] for h in _search(path, '"dự toán"')["hits"]} == {"d1", "d2"}
    assert [h["id"] for h in _search(path, '"phê duyệt dự toán"')["hits"]] == ["d1"]
    assert _search(path, '"dự phê"')["total"] == 0


def test_excluded_words_remove_documents(path: Path) -> None:
    assert [h["id"] for h in _search(path, "dự toán -phê")["hits"]] == ["d2"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 1000},
        {"offset": -1},
        {"offset": 10**9},
        {"sort": "random"},
        {"filters": {"password": "x"}},
        {"facets": ["body"]},
    ],
)
def test_bad_paging_sorting_filters_and_facets_are_typed_errors(path: Path, kwargs: dict) -> None:
    with pytest.raises(SearchQueryError) as err:
        _search(path, "dự toán", **kwargs)
    assert err.value.message_vi


def test_filters_narrow_and_facets_count(path: Path) -> None:
    result = _search(path, "dự toán", filters={"doc_type": "Công văn"}, facets=["doc_type"])
    assert [h["id"] for h in result["hits"]] == ["d2"]
    assert result["facets"]["doc_type"] == [{"value": "Công văn", "count": 1}]
    everything = _search(path, "", facets=["year", "migrated"])
    years = {f["value"]: f["count"] for f in everything["facets"]["year"]}
    assert years == {"2024": 2, "2023": 1}
    assert _search(path, "", filters={"migrated": False})["total"] == 3
    assert _search(path, "", filters={"migrated": "false"})["total"] == 3
    assert _search(path, "", filters={"migrated": "1"})["total"] == 0
    assert _search(path, "", filters={"year": 2023})["total"] == 1


def test_all_words_are_required_for_short_queries_with_a_relaxed_fallback(path: Path) -> None:
    strict = _search(path, "dự toán ngân sách")
    assert [h["id"] for h in strict["hits"]] == ["d1"] and not strict["relaxed"]
    relaxed = _search(path, "dự toán lễ")
    assert relaxed["relaxed"] and relaxed["total"] == 3
