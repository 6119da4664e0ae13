"""Keeping the index right: versions, replacement, deletion, drift checks, rebuild, locking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from search_index import schema, searcher, writer
from search_index.errors import IndexBusyError, IndexMissingError, IndexOutdatedError


def _ids(path: Path, query: str) -> list[str]:
    return [h["id"] for h in searcher.search(path, query, principals=["all"])["hits"]]


def test_schema_version_is_stored_and_a_mismatch_asks_for_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    assert writer.index_status(path) == "missing"
    with pytest.raises(IndexMissingError):
        writer.open_index(path)
    writer.open_or_create(path)
    assert schema.read_version(path) == schema.SCHEMA_VERSION
    assert writer.index_status(path) == "ok"
    schema.write_version(path, schema.SCHEMA_VERSION + 1)
    assert writer.index_status(path) == "outdated"
    with pytest.raises(IndexOutdatedError) as err:
        writer.open_or_create(path)
    assert "xây dựng lại" in err.value.message_vi
    writer.recreate(path)
    assert writer.index_status(path) == "ok"


def test_reindexing_a_record_replaces_it(tmp_path: Path, record: Callable[..., Any]) -> None:
    path = tmp_path / "ix"
    writer.index_documents(path, [record("d1", "Báo cáo tài chính quý một")])
    writer.index_documents(path, [record("d2", "Kế hoạch công tác")])
    updated = record("d1", "Báo cáo kiểm toán nội bộ", updated_at="v2")
    writer.index_documents(path, [updated])
    assert writer.indexed_versions(path) == {"d1": "v2", "d2": "v1"}
    assert _ids(path, "kiểm toán") == ["d1"]
    assert _ids(path, "tài chính") == []


def test_repeated_ids_in_one_batch_keep_the_last_version(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    first = record("d1", "Bản nháp", updated_at="v1")
    last = record("d1", "Bản chính thức", updated_at="v2")
    assert writer.index_documents(path, [first, last]) == 1
    assert writer.indexed_versions(path) == {"d1": "v2"}


def test_delete_and_check_report_missing_stale_and_extra(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    writer.index_documents(path, [record(f"d{i}", f"Văn bản {i}") for i in range(5)])
    assert writer.delete_documents(path, ["d4", "nope"]) == 1
    current = {"d0": "v1", "d1": "v1", "d2": "v2", "d5": "v1"}
    drift = writer.check(path, current)
    assert (drift.missing, drift.stale, sorted(drift.extra)) == (["d5"], ["d2"], ["d3"])
    assert not drift.clean
    writer.index_documents(path, [record("d2", "Văn bản 2", updated_at="v2")])
    writer.index_documents(path, [record("d5", "Văn bản 5")])
    writer.delete_documents(path, ["d3"])
    assert writer.check(path, current).clean


def test_many_small_updates_stay_few_segments_and_all_searchable(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    for i in range(30):
        writer.index_documents(path, [record(f"d{i}", f"Tờ trình số {i} về ngân sách")])
    assert len(writer.open_index(path)._segments()) < 10
    assert len(writer.indexed_versions(path)) == 30
    assert searcher.search(path, "ngân sách", principals=["all"])["total"] == 30


def test_rebuild_resumes_after_a_crash(tmp_path: Path, record: Callable[..., Any]) -> None:
    path = tmp_path / "ix"
    records = [record(f"d{i}", f"Công văn {i}") for i in range(12)]

    def crashing() -> Iterator:
        for i, r in enumerate(records):
            if i == 7:
                raise RuntimeError("worker killed")
            yield r

    with pytest.raises(RuntimeError):
        writer.rebuild(path, crashing(), restart=True, batch_size=3)
    assert writer.index_status(path) == "rebuilding"
    assert len(writer.indexed_versions(path)) == 6  # two committed batches survive
    written = writer.rebuild(path, [*records[1:], record("new", "Mới")], batch_size=3)
    assert written == 7  # d6..d11 and "new"; d1..d5 were already current
    assert writer.index_status(path) == "ok"
    assert sorted(writer.indexed_versions(path)) == sorted(
        [f"d{i}" for i in range(1, 12)] + ["new"]
    )


def test_a_held_lock_makes_writers_give_up_with_a_message(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    ix = writer.open_or_create(path)
    lock = ix.lock("WRITELOCK")
    assert lock.acquire()
    try:
        with pytest.raises(IndexBusyError) as err:
            writer.index_documents(path, [record("d1", "x")], timeout=0.2)
        assert "đang được cập nhật" in err.value.message_vi
    finally:
        lock.release()
    assert writer.index_documents(path, [record("d1", "x")]) == 1


def test_worker_processes_build_batches_without_losing_any(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    records = [record(f"d{i}", f"Quyết định {i}", "nội dung " * 50) for i in range(40)]
    assert writer.index_documents(path, records, batch_size=5, procs=2) == 40
    assert len(writer.indexed_versions(path)) == 40
    result = searcher.search(path, "quyết định", principals=["all"], facets=["doc_type"])
    assert result["total"] == 40
    assert result["facets"]["doc_type"] == [{"value": "Công văn", "count": 40}]


def test_batches_go_to_workers_with_each_text_once(
    tmp_path: Path, record: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies of a text read as separate strings are pickled once per batch."""
    import pickle

    sent: list[int] = []
    share = writer._share_texts

    def spy(batch: list[Any]) -> list[Any]:
        shared = share(batch)
        sent.append(len(pickle.dumps(shared, 2)))
        return shared

    monkeypatch.setattr(writer, "_share_texts", spy)
    body = "nội dung công văn " * 200
    records = [record(f"d{i}", "Công văn", "".join(list(body))) for i in range(10)]
    assert len({id(r["body"]) for r in records}) == 10
    assert writer.index_documents(tmp_path / "ix", records, batch_size=10, procs=2) == 10
    assert sent and sent[0] < 2 * len(body.encode())  # one copy of the body, not ten
    result = searcher.search(tmp_path / "ix", "công văn", principals=["all"])
    assert result["total"] == 10


def test_searches_see_a_recreated_index_at_the_same_generation(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    writer.index_documents(path, [record("old", "Lưu trữ hồ sơ cũ")])
    assert _ids(path, "hồ sơ") == ["old"]
    writer.recreate(path)
    writer.index_documents(path, [record("new", "Lưu trữ hồ sơ mới")])
    assert _ids(path, "hồ sơ") == ["new"]


def test_deleted_documents_do_not_break_scoring(tmp_path: Path, record: Callable[..., Any]) -> None:
    path = tmp_path / "ix"
    writer.index_documents(path, [record(f"d{i}", "Báo cáo tổng kết") for i in range(3)])
    writer.index_documents(path, [record("d0", "Báo cáo tổng kết năm", updated_at="v2")])
    writer.delete_documents(path, ["d1", "d2"])
    assert _ids(path, "báo cáo tổng kết") == ["d0"]


def test_version_matches_what_mongodb_gives_back() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from search_index.document import version_of

    saved = datetime(2025, 3, 1, 8, 30, 15, 123456)
    read_back = datetime(2025, 3, 1, 8, 30, 15, 123000)
    assert version_of(saved) == version_of(read_back) == "2025-03-01T08:30:15.123"
    aware = datetime(2025, 3, 1, 15, 30, 15, 123000, tzinfo=timezone(timedelta(hours=7)))
    assert version_of(aware) == version_of(read_back.replace(tzinfo=UTC)) == version_of(read_back)
    assert version_of(None) == "" and version_of("v2") == "v2"
