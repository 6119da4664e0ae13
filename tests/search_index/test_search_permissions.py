"""Every hit, count, facet and snippet is limited to documents the user may open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search_index import searcher

FACETS = ["doc_type", "issuer", "unit", "state", "direction", "year", "migrated"]


@pytest.fixture
def archive(tmp_path: Path, record: Callable[..., Any]) -> Path:
    from search_index import writer

    docs = [
        record("public", "Kế hoạch phòng chống thiên tai", "kế hoạch chung", principals=["all"]),
        record(
            "unit-a",
            "Kế hoạch tuyển dụng phòng Tổ chức",
            "kế hoạch tuyển dụng",
            principals=["unit:a"],
            unit_ids=["a"],
            doc_type="Tờ trình",
        ),
        record(
            "unit-b",
            "Kế hoạch mua sắm phòng Tài vụ",
            "kế hoạch mua sắm",
            principals=["unit:b"],
            unit_ids=["b"],
            issuer="Sở Tài chính",
        ),
        record(
            "mine",
            "Kế hoạch cá nhân của chuyên viên",
            "kế hoạch riêng",
            principals=["user:42"],
        ),
        record(
            "secret",
            "Kế hoạch bảo vệ bí mật nhà nước",
            "kế hoạch mật: phương án sơ tán kho lưu trữ",
            principals=["unit:a", "role:director"],
            secrecy=2,
            doc_type="Kế hoạch mật",
            issuer="Bộ Công an",
        ),
    ]
    path = tmp_path / "ix"
    writer.index_documents(path, docs)
    return path


def _run(path: Path, principals: list[str], clearance: int, query: str = "kế hoạch") -> dict:
    return searcher.search(
        path, query, principals=principals, clearance=clearance, facets=FACETS, limit=20
    )


@pytest.mark.parametrize(
    ("principals", "clearance", "expected"),
    [
        ([], 0, {"public"}),
        (["unit:a"], 0, {"public", "unit-a"}),
        (["unit:a"], 2, {"public", "unit-a", "secret"}),
        (["unit:b", "user:42"], 3, {"public", "unit-b", "mine"}),
        (["role:director"], 1, {"public"}),
        (["role:director"], 3, {"public", "secret"}),
    ],
)
def test_hit_list_and_total_follow_principals_and_clearance(
    archive: Path, principals: list[str], clearance: int, expected: set[str]
) -> None:
    result = _run(archive, principals, clearance)
    assert {h["id"] for h in result["hits"]} == expected
    assert result["total"] == len(expected)
    counts = {f["value"]: f["count"] for f in result["facets"]["state"]}
    assert counts == {"published": len(expected)}


def test_secret_document_leaks_nowhere_without_clearance(archive: Path) -> None:
    # The unit is allowed but the clearance is too low: nothing of it may show.
    for query in ("bí mật nhà nước", "sơ tán kho", "kế hoạch", "Bộ Công an", "*"):
        result = _run(archive, ["unit:a"], 1, query)
        assert "secret" not in {h["id"] for h in result["hits"]}
        issuers = {f["value"] for f in result["facets"]["issuer"]}
        types = {f["value"] for f in result["facets"]["doc_type"]}
        assert "Bộ Công an" not in issuers and "Kế hoạch mật" not in types
        text = str(result)
        assert "sơ tán" not in text and "bí mật" not in text
    assert _run(archive, ["unit:a"], 1, "sơ tán kho")["total"] == 0
    cleared = _run(archive, ["unit:a"], 2, "sơ tán kho")
    assert [h["id"] for h in cleared["hits"]] == ["secret"]
    assert any("<mark>" in h for h in cleared["hits"][0]["highlights"])


def test_facets_count_only_visible_documents(archive: Path) -> None:
    result = _run(archive, ["unit:a", "unit:b"], 0)
    units = {f["value"]: f["count"] for f in result["facets"]["unit"]}
    assert units == {"u1": 1, "a": 1, "b": 1}
    issuers = {f["value"]: f["count"] for f in result["facets"]["issuer"]}
    assert issuers == {"UBND tỉnh Hà Giang": 2, "Sở Tài chính": 1}


def test_pages_are_exact_under_permissions(archive: Path) -> None:
    first = searcher.search(archive, "kế hoạch", principals=["unit:a"], clearance=2, limit=2)
    second = searcher.search(
        archive, "kế hoạch", principals=["unit:a"], clearance=2, limit=2, offset=2
    )
    assert first["total"] == second["total"] == 3
    ids = [h["id"] for h in first["hits"] + second["hits"]]
    assert sorted(ids) == ["public", "secret", "unit-a"]


def test_warming_changes_no_result(archive: Path) -> None:
    before = _run(archive, ["unit:a"], 2)
    searcher.warm(archive)
    assert _run(archive, ["unit:a"], 2) == before
