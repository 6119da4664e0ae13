"""The embedded store's index-like lookups give what a full scan (stock mongomock) gives."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gridfs
import mongomock
import pytest
from bson import ObjectId
from mongomock import DuplicateKeyError

from models import mongomock_speed


@pytest.fixture
def fast() -> Iterator[None]:
    """Run with the patches installed; leave them as the session had them."""
    was = bool(mongomock_speed._installed)
    mongomock_speed.accelerate()
    yield
    if not was:
        mongomock_speed.restore()


def fresh() -> Any:
    """A collection in a database of its own (mongomock clients share their databases)."""
    return mongomock.MongoClient()[f"speed_{uuid.uuid4().hex}"].things


def both(scenario: Callable[[Any], Any]) -> tuple[Any, Any]:
    """Run a scenario on a fresh collection with stock mongomock, then with the patches."""
    was = bool(mongomock_speed._installed)
    try:
        mongomock_speed.restore()
        stock = scenario(fresh())
        mongomock_speed.accelerate()
        patched = scenario(fresh())
    finally:
        if not was:
            mongomock_speed.restore()
    return stock, patched


IDS = [ObjectId() for _ in range(6)]
QUERIES: list[dict[str, Any]] = [
    {"_id": IDS[2]},
    {"_id": str(IDS[2])},  # a string is not an ObjectId
    {"_id": {"$eq": IDS[3]}},
    {"_id": {"$in": [IDS[4], ObjectId(), IDS[0], IDS[4]]}},
    {"_id": {"$in": []}},
    {"_id": {"$in": [IDS[1], IDS[5]]}, "n": {"$gte": 3}},
    {"_id": IDS[1], "kind": "b"},
    {"_id": 7},
    {"_id": 7.0},  # 7 == 7.0 in MongoDB
    {"_id": True},  # not a number
    {"_id": {"$in": ["a-1", re.compile("^a-")]}},  # a regex matches by pattern: stock path
    {"_id": {"$nin": [IDS[0]]}},
    {"_id": {"$gt": IDS[1]}},
    {"kind": "a"},
]


def test_id_lookups_match_a_scan():
    def scenario(things: Any) -> list[Any]:
        things.insert_many(
            [{"_id": oid, "n": i, "kind": "ab"[i % 2]} for i, oid in enumerate(IDS)]
            + [{"_id": 7, "n": 7, "kind": "a"}, {"_id": "a-1", "n": 8, "kind": "b"}]
        )
        out = [sorted(map(str, (d["_id"] for d in things.find(q)))) for q in QUERIES]
        out.append(things.count_documents({"_id": {"$in": IDS[:3]}}))
        out.append(things.update_many({"_id": {"$in": IDS[:2]}}, {"$inc": {"n": 10}}).matched_count)
        out.append(things.delete_many({"_id": {"$in": [IDS[5], 7]}}).deleted_count)
        out.append(sorted((str(d["_id"]), d["n"]) for d in things.find()))
        return out

    stock, patched = both(scenario)
    assert patched == stock
    assert stock[3] == sorted(map(str, [IDS[0], IDS[4]])) and stock[8] == ["7"]


def test_several_ids_come_in_id_order_and_skip_the_scan(fast, monkeypatch):
    things = fresh()
    things.insert_many([{"_id": oid} for oid in reversed(IDS)])
    scans = []
    stock_iter = mongomock_speed._installed["iter"]
    monkeypatch.setitem(
        mongomock_speed._installed, "iter", lambda c, f: scans.append(f) or stock_iter(c, f)
    )
    assert [d["_id"] for d in things.find({"_id": {"$in": [IDS[3], IDS[1]]}})] == [IDS[1], IDS[3]]
    assert things.find_one({"_id": IDS[2]}) == {"_id": IDS[2]}
    things.update_one({"_id": IDS[2]}, {"$set": {"x": 1}})
    assert scans == []
    assert things.find_one({"x": 1}) == {"_id": IDS[2], "x": 1}
    assert scans == [{"x": 1}]


def outcomes(things: Any) -> list[str]:
    """Writes under unique indexes; each gives 'ok' or 'dup'."""
    results = []

    def attempt(write: Callable[[], Any]) -> None:
        try:
            write()
            results.append("ok")
        except DuplicateKeyError:
            results.append("dup")

    things.insert_one({"_id": 1, "code": "x", "a": 1, "b": 1})  # before the indexes
    things.create_index("code", unique=True)
    things.create_index("legacy", unique=True, sparse=True)
    things.create_index([("a", 1), ("b", 1)], unique=True, sparse=True)
    things.create_index("part", unique=True, partialFilterExpression={"kind": "p"})
    steps: list[Callable[[], Any]] = [
        lambda: things.insert_one({"_id": 2, "code": "x"}),  # taken before the index
        lambda: things.insert_one({"_id": 3, "code": "y", "a": 1, "b": 2}),
        lambda: things.insert_one({"_id": 4, "code": "z", "a": 1, "b": 2}),  # (a, b) taken
        lambda: things.update_one({"_id": 3}, {"$set": {"code": "x"}}),  # rolled back
        lambda: things.insert_one({"_id": 5, "code": 1}),
        lambda: things.insert_one({"_id": 6, "code": 1.0}),  # 1 == 1.0
        lambda: things.insert_one({"_id": 7, "code": True}),
        lambda: things.insert_one({"_id": 8, "code": str(IDS[0])}),
        lambda: things.insert_one({"_id": 9, "code": IDS[0]}),
        lambda: things.delete_one({"_id": 1}),
        lambda: things.insert_one({"_id": 10, "code": "x"}),  # freed by the delete
        lambda: things.update_one({"_id": 3}, {"$set": {"code": "w"}}),
        lambda: things.insert_one({"_id": 11, "code": "y"}),  # freed by the update
        lambda: things.insert_one({"_id": 12}),  # code missing: null
        lambda: things.insert_one({"_id": 13, "code": None}),  # null again
        lambda: things.insert_one({"_id": 14, "code": "s", "legacy": None}),  # sparse: skipped
        lambda: things.insert_one({"_id": 15, "code": "t"}),
        lambda: things.insert_one({"_id": 16, "code": "u", "legacy": "L"}),
        lambda: things.insert_one({"_id": 17, "code": "v", "legacy": "L"}),
        lambda: things.insert_one({"_id": 18, "code": "p1", "kind": "p", "part": 1}),
        lambda: things.insert_one({"_id": 19, "code": "p2", "kind": "p", "part": 1}),
        lambda: things.insert_one({"_id": 20, "code": "p3", "kind": "q", "part": 1}),
        lambda: things.insert_one({"_id": 21, "code": ["m", "n"]}),  # arrays: stock from here
        lambda: things.insert_one({"_id": 22, "code": "m"}),
        lambda: things.insert_one({"_id": 23, "code": "k"}),
        lambda: things.insert_one({"_id": 24, "code": "k"}),
        lambda: things.drop_index("code_1"),
        lambda: things.insert_one({"_id": 30, "code": "k"}),  # no index: allowed
        lambda: things.create_index("code", unique=True),  # existing duplicates: refused
        lambda: things.delete_one({"_id": 30}),
        lambda: things.create_index("code", unique=True),  # the map may predate the drop
        lambda: things.drop_index("code_1"),
        lambda: things.insert_one({"_id": 31, "code": "q"}),  # written while not indexed
        lambda: things.create_index("code", unique=True),
        lambda: things.insert_one({"_id": 32, "code": "q"}),
    ]
    for step in steps:
        attempt(step)
    results.append(str(sorted((d["_id"], str(d.get("code"))) for d in things.find())))
    return results


def test_unique_indexes_refuse_what_a_scan_refuses():
    stock, patched = both(outcomes)
    assert patched == stock
    assert stock[:15] == ["dup", "ok", "dup", "dup", "ok", "dup", "dup"] + ["ok"] * 7 + ["dup"]
    assert stock[15:26] == ["ok", "ok", "ok", "dup", "ok", "dup", "ok", "ok", "dup", "ok", "dup"]
    assert stock[26:35] == ["ok", "ok", "dup", "ok", "ok", "ok", "ok", "ok", "dup"]


def test_an_index_created_again_keeps_its_map(fast):
    things = fresh()
    things.create_index("code", unique=True)
    things.insert_many([{"_id": i, "code": f"c{i}"} for i in range(3)])
    holders = things._store.__dict__["_speed_unique"]["code_1"][1]
    things.create_index("code", unique=True)  # as GridFS does for every file
    things.insert_one({"_id": 3, "code": "c3"})
    assert things._store.__dict__["_speed_unique"]["code_1"][1] is holders
    assert len(holders) == 4
    with pytest.raises(DuplicateKeyError):
        things.insert_one({"_id": 4, "code": "c1"})


def test_a_dropped_collection_forgets_its_maps(fast):
    things = fresh()
    things.create_index("code", unique=True)
    things.insert_many([{"_id": i, "code": f"c{i}"} for i in range(3)])
    store = things._store
    assert len(store.__dict__["_speed_unique"]["code_1"][1]) == 3
    things.drop()
    assert "_speed_unique" not in store.__dict__  # nothing of the dropped documents is kept
    things.create_index("code", unique=True)
    things.insert_one({"_id": 9, "code": "c1"})
    with pytest.raises(DuplicateKeyError):
        things.insert_one({"_id": 10, "code": "c1"})


def test_concurrent_inserts_take_a_value_once(fast):
    things = fresh()
    things.create_index("key", unique=True)
    done = []

    def insert(i: int) -> None:
        try:
            things.insert_one({"_id": i, "key": "same"})
            done.append(i)
        except DuplicateKeyError:
            pass

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 1 and things.count_documents({}) == 1


def test_gridfs_files_round_trip_without_scans(fast, monkeypatch):
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
    db = fresh().database
    fs = gridfs.GridFS(db)
    scans = []
    stock_iter = mongomock_speed._installed["iter"]
    monkeypatch.setitem(
        mongomock_speed._installed, "iter", lambda c, f: scans.append(f) or stock_iter(c, f)
    )
    ids = [fs.put(f"tệp {i}".encode() * 5000, filename=f"f{i}.txt") for i in range(5)]
    assert scans == []  # GridFS asks find_one() of its collections for every file
    assert [fs.get(i).read() for i in ids] == [f"tệp {i}".encode() * 5000 for i in range(5)]
    fs.delete(ids[0])
    assert db["fs.files"].find_one() is not None and not fs.exists(ids[0])
    assert sorted(f.filename for f in fs.find({})) == [f"f{i}.txt" for i in range(1, 5)]


def updates(things: Any) -> list[Any]:
    """Operator updates, a replacement, and updates that must roll back."""
    from pymongo.errors import WriteError

    results: list[Any] = []
    things.create_index("code", unique=True)
    things.insert_many(
        [
            {"_id": i, "code": f"c{i}", "n": i, "tags": ["a"], "sub": {"x": [1, 2], "y": {"z": 1}},
             "items": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]}
            for i in range(4)
        ]
    )  # fmt: skip
    steps: list[Callable[[], Any]] = [
        lambda: things.update_one({"_id": 0}, {"$set": {"sub.y.z": 5, "n": 10}}),
        lambda: things.update_one({"_id": 0}, {"$set": {"n": 10}}),  # no change
        lambda: things.update_one({"_id": 1}, {"$push": {"tags": {"$each": ["b", "c"]}}}),
        lambda: things.update_one({"_id": 1}, {"$addToSet": {"tags": "a"}}),
        lambda: things.update_many({"_id": {"$in": [1, 2]}}, {"$inc": {"n": 5}}),
        lambda: things.update_one({"_id": 2}, {"$unset": {"sub.x": ""}, "$rename": {"n": "m"}}),
        lambda: things.update_one({"_id": 3, "items.k": 2}, {"$set": {"items.$.v": "B"}}),
        lambda: things.update_one({"_id": 3}, {"$pull": {"sub.x": 1}, "$set": {"code": "c0"}}),
        lambda: things.update_one({"_id": 3}, {"$set": {"_id": 9}}),
        lambda: things.replace_one({"_id": 2}, {"code": "r", "new": True}),
        lambda: things.update_one({"_id": 7}, {"$set": {"code": "u"}}, upsert=True),
        lambda: things.update_many({}, {"$set": {"seen": True}}),
    ]
    for step in steps:
        try:
            result = step()
            results.append((result.matched_count, result.modified_count))
        except (DuplicateKeyError, WriteError) as exc:
            results.append(type(exc).__name__)
    results.append(sorted((str(d["_id"]), sorted(d.items(), key=str)) for d in things.find()))
    return results


def test_updates_match_stock_and_roll_back():
    stock, patched = both(updates)
    assert patched == stock
    assert stock[7] == "DuplicateKeyError" and stock[8] == "WriteError" and stock[1] == (1, 0)
    third = dict(stock[-1][3][1])
    assert third["sub"] == {"x": [1, 2], "y": {"z": 1}} and third["code"] == "c3"  # rolled back


def cursors(things: Any) -> list[Any]:
    things.insert_many([{"_id": i, "n": i % 3} for i in range(10)])
    cursor = things.find({"n": {"$lt": 2}})
    first = next(cursor)
    rest = [d["_id"] for d in cursor]
    cursor.rewind()
    again = [d["_id"] for d in cursor]
    return [
        first["_id"], rest, again,
        [d["_id"] for d in things.find().sort("_id", -1).skip(2).limit(3)],
        [d["_id"] for d in things.find().limit(-4)],
        [d["_id"] for d in things.find().skip(8)],
        [d["_id"] for d in things.find().skip(20)],
        [d["_id"] for d in things.find({"n": 5})],
        [d["_id"] for d in things.find().limit(3).clone()],
    ]  # fmt: skip


def test_cursors_hand_out_the_same_results():
    stock, patched = both(cursors)
    assert patched == stock
    assert stock[3] == [7, 6, 5] and stock[4] == [0, 1, 2, 3] and stock[6] == []


def test_datetime_walk_gives_what_the_stock_walk_gives(fast):
    from collections import OrderedDict
    from datetime import UTC, datetime, timedelta, timezone

    from bson import SON, Decimal128, Timestamp
    from mongomock import helpers

    hanoi = timezone(timedelta(hours=7))
    value = {
        "s": "văn bản", "n": 3, "f": 1.5, "b": True, "none": None, "raw": b"\x00",
        "oid": ObjectId(), "uuid": uuid.uuid4(), "dec": Decimal128("1.10"),
        "naive": datetime(2026, 1, 2, 3, 4, 5, 678901),
        "aware": datetime(2026, 1, 2, 10, 4, 5, 999999, tzinfo=hanoi),
        "list": [datetime(2026, 5, 1, tzinfo=UTC), {"at": datetime(2026, 5, 1, 0, 0, 0, 1)}],
        "tuple": (1, datetime(2026, 5, 1, 0, 0, 0, 1500)),
        "ordered": OrderedDict(at=datetime(2026, 5, 1, 0, 0, 0, 2500)),
        "son": SON([("at", datetime(2026, 5, 1, 0, 0, 0, 3500))]),
        "ts": Timestamp(5, 1),
    }  # fmt: skip

    def typed(v: Any) -> Any:
        if isinstance(v, dict):
            return type(v), {k: typed(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v), [typed(x) for x in v]
        return type(v), v, getattr(v, "tzinfo", None)

    mongomock_speed.restore()
    expected = helpers.patch_datetime_awareness_in_document(value)
    mongomock_speed.accelerate()
    assert helpers.patch_datetime_awareness_in_document is mongomock_speed._patch_datetimes
    fast_result = helpers.patch_datetime_awareness_in_document(value)
    assert typed(fast_result) == typed(expected)
    assert fast_result["aware"] == datetime(2026, 1, 2, 3, 4, 5, 999000)
    assert fast_result["list"][1]["at"].microsecond == 0
