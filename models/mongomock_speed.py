"""Index-like lookups for the in-memory database (mongomock) of the embedded portal.

Stock mongomock answers every query and every unique-index check by scanning the whole
collection, so writing N documents costs N scans: 3,000 inserts under the legacy_id unique
index take ~34 s, 2,000 GridFS files ~56 s, and every page that opens a document by id scans
them all. ``accelerate()`` makes three mongomock methods do what MongoDB's indexes do:

- a filter on ``_id`` (a value, ``$eq`` or ``$in`` of plain values) reads those documents by
  key, then applies the rest of the filter to them;
- a unique index keeps a value -> ``_id`` map, checked against the stored document;
- ``find_one()`` without a filter (GridFS asks it for every file) reads the first document.

Three costs that grow with the documents, not with the collection, are cut as well: an
update snapshots (for its rollback) only the top-level fields it touches instead of
deep-copying the whole document, a cursor hands out its next result without copying the rest
of the list (stock iteration is quadratic in the result size), and the walk that truncates
datetimes to milliseconds in every document written and every filter passes strings, numbers
and ids by their exact type instead of five ``isinstance`` checks each.

Everything else (other filters, values of other types, partial or collated indexes) takes the
stock path, so queries match the same documents. Several documents read by ``_id`` come in
``_id`` order, as from MongoDB's ``_id`` index, where stock mongomock gives insertion order.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from bson import ObjectId

#: ``_id`` values looked up by key (hashable, and equal in Python exactly when in MongoDB).
_KEY_TYPES = (str, int, float, ObjectId, uuid.UUID)
_lock = threading.Lock()
_installed: dict[str, Any] = {}
_updating = threading.local()  # the collection store and fields of the update in progress


class _Unsupported(Exception):
    """A value the fast paths do not handle: use the stock path."""


def _plain_id(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, _KEY_TYPES):
        return False
    return not (isinstance(value, float) and value != value)  # NaN


def _id_keys(filter: Any) -> list[Any] | None:
    """Return the ``_id`` values a filter asks for, or None when it is not such a filter."""
    if not isinstance(filter, dict) or "_id" not in filter:
        return None
    spec = filter["_id"]
    if isinstance(spec, dict):
        if set(spec) == {"$in"} and isinstance(spec["$in"], list | tuple):
            keys = list(spec["$in"])
        elif set(spec) == {"$eq"}:
            keys = [spec["$eq"]]
        else:
            return None
    else:
        keys = [spec]
    return keys if all(_plain_id(k) for k in keys) else None


def _sort_key(doc: dict[str, Any]) -> tuple[int, Any]:
    value = doc["_id"]
    # MongoDB's BSON order across the types used here: numbers, strings, ObjectIds, UUIDs.
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, uuid.UUID):
        return (2, value.bytes)
    return (3, value.binary)


def _unique_value(value: Any) -> tuple[str, Any]:
    """Return a hashable key equal for two values exactly when stock mongomock finds them equal.

    That is MongoDB's equality for strings, ObjectIds, UUIDs, null and numbers (1 == 1.0);
    like stock mongomock (and its create_index), True equals 1, where MongoDB tells them apart.
    """
    if value is None:
        return ("null", None)
    if isinstance(value, int | float):  # bool included, as in Python and stock mongomock
        if value != value:
            raise _Unsupported
        return ("number", value)
    if isinstance(value, str | ObjectId | uuid.UUID):
        return (type(value).__name__, value)
    raise _Unsupported


def _fields_of(doc: dict[str, Any], fields: list[str]) -> list[Any]:
    from mongomock import helpers

    values = []
    for field in fields:
        try:
            values.append(helpers.get_value_by_dot(doc, field))
        except KeyError:
            values.append(None)  # missing counts as null, as in MongoDB
    return values


def _holders(store: Any, name: str, index: dict[str, Any], skip_id: Any) -> dict[Any, Any] | None:
    """Return the value -> ``_id`` map of a unique index, built from the store on first use.

    None means the index is checked the stock way: some document holds a value the map cannot
    compare as MongoDB would (an array, a sub-document, a date...).
    """
    state = store.__dict__.setdefault("_speed_unique", {})
    entry = state.get(name)
    if entry is not None and entry[0] == _spec(index):
        return entry[1]
    fields = [field for field, _ in index["key"]]
    table: dict[Any, Any] = {}
    holders: dict[Any, Any] | None = table
    try:
        for doc in store.documents:
            if doc["_id"] == skip_id:  # the document being checked is already stored
                continue
            values = _fields_of(doc, fields)
            if index.get("sparse") and all(v is None for v in values):
                continue
            table.setdefault(tuple(_unique_value(v) for v in values), doc["_id"])
    except (_Unsupported, TypeError):
        holders = None
    state[name] = (_spec(index), holders)
    return holders


def _spec(index: dict[str, Any]) -> tuple[Any, ...]:
    # GridFS creates its indexes again for every file: an equal spec keeps its map.
    return (tuple(map(tuple, index["key"])), bool(index.get("sparse")))


def _check_stock(collection: Any, index: dict[str, Any], new_data: dict[str, Any]) -> None:
    """Check one unique index the way stock mongomock checks them all (a full scan)."""
    from mongomock import DuplicateKeyError

    fields = [field for field, _ in index["key"]]
    query: dict[str, Any] = dict(zip(fields, _fields_of(new_data, fields), strict=True))
    if index.get("sparse") and set(query.values()) == {None}:
        return
    partial = index.get("partialFilterExpression")
    if partial is not None:
        query = {"$and": [partial, query]}
    if len(list(_installed["iter"](collection, query))) > 1:
        raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)


def _check_unique(collection: Any, name: str, index: dict[str, Any], new_data: Any) -> None:
    """Raise DuplicateKeyError if another document holds ``new_data``'s value of the index."""
    from mongomock import DuplicateKeyError

    store = collection._store
    if index.get("partialFilterExpression") is not None or index.get("collation"):
        return _check_stock(collection, index, new_data)
    new_id = new_data["_id"]
    fields = [field for field, _ in index["key"]]
    values = _fields_of(new_data, fields)
    if index.get("sparse") and all(v is None for v in values):
        return None
    try:
        hash(new_id)
        key = tuple(_unique_value(v) for v in values)
    except (_Unsupported, TypeError):
        store.__dict__.setdefault("_speed_unique", {})[name] = (_spec(index), None)  # stock
        return _check_stock(collection, index, new_data)
    holders = _holders(store, name, index, new_id)
    if holders is None:
        return _check_stock(collection, index, new_data)
    other = holders.get(key)
    # The map may be stale (holder deleted or changed): the stored document decides.
    if (
        other is not None
        and other != new_id
        and other in store
        and tuple(_unique_value(v) for v in _fields_of(store[other], fields)) == key
    ):
        raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)
    holders[key] = new_id
    return None


def _iter_documents(self: Any, filter: Any) -> Iterator[dict[str, Any]] | Iterable[Any]:
    from mongomock import filtering

    keys = _id_keys(filter)
    if keys is None:
        return _installed["iter"](self, filter)
    store = self._store
    found = [store[k] for k in dict.fromkeys(keys) if k in store]
    if len(found) > 1:
        found.sort(key=_sort_key)
    if len(filter) == 1:
        return iter(found)
    rest = {k: v for k, v in filter.items() if k != "_id"}
    if not found:
        filtering.filter_applies(rest, {})  # a bad filter raises, as with a scan
    return (doc for doc in found if filtering.filter_applies(rest, doc))


def _find_one(self: Any, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
    if not filter and not args and set(kwargs) <= {"projection", "session"}:
        first = next(iter(self._store.documents), None)
        if first is None:
            return None
        if _plain_id(first["_id"]):
            filter = {"_id": first["_id"]}
    return _installed["find_one"](self, filter, *args, **kwargs)


def _ensure_uniques(self: Any, new_data: Any) -> None:
    with _lock:  # check and record together: two threads cannot both take a value
        indexes = self._store.indexes
        state = self._store.__dict__.get("_speed_unique") or {}
        for name in [n for n in state if n not in indexes]:
            del state[name]  # dropped: documents written meanwhile are not in its map
        for name, index in list(indexes.items()):
            if index.get("unique"):
                _check_unique(self, name, index, new_data)


def _touched_fields(update: Any) -> set[str] | None:
    """Return the top-level fields an operator update may change (None: a replacement)."""
    if not isinstance(update, dict) or not update:
        return None
    touched: set[str] = set()
    for operator, fields in update.items():
        if not operator.startswith("$") or not isinstance(fields, dict):
            return None
        for path, value in fields.items():
            touched.add(str(path).split(".", 1)[0])
            if operator == "$rename":
                touched.add(str(value).split(".", 1)[0])
    return touched


class _CopyModule:
    """mongomock.collection's ``copy`` module, with a cheap snapshot for updates.

    ``_update`` deep-copies the stored document before applying an operator update, to roll it
    back and to tell whether it changed. The update changes only the top-level fields it names,
    so a shallow copy with those fields deep-copied is the same snapshot.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        touched = getattr(_updating, "fields", None)
        if touched is not None and memo is None and isinstance(value, dict):
            key = value.get("_id")
            store = _updating.store
            if _plain_id(key) and key in store and store[key] is value:
                snapshot = copy.copy(value)
                for field in touched.intersection(value):
                    snapshot[field] = copy.deepcopy(value[field])
                return snapshot
        return copy.deepcopy(value, memo)


def _update(self: Any, spec: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
    previous = getattr(_updating, "fields", None), getattr(_updating, "store", None)
    _updating.fields, _updating.store = _touched_fields(document), self._store
    try:
        return _installed["update"](self, spec, document, *args, **kwargs)
    finally:
        _updating.fields, _updating.store = previous


#: Values mongomock's datetime walk returns unchanged (exact types: subclasses go the stock way).
_LEAVES = frozenset((str, int, float, bool, type(None), bytes, ObjectId, uuid.UUID))


def _patch_datetimes(value: Any) -> Any:
    """mongomock.helpers.patch_datetime_awareness_in_document, with plain values passed fast."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        leaves = _LEAVES
        return {k: v if type(v) in leaves else _patch_datetimes(v) for k, v in value.items()}
    if kind is list:
        leaves = _LEAVES
        return [v if type(v) in leaves else _patch_datetimes(v) for v in value]
    return _installed["patch_datetimes"](value)  # datetimes, tuples, SON, Timestamp...


def _drop(self: Any) -> None:
    """CollectionStore.drop, forgetting the unique-index maps of the dropped documents."""
    self.__dict__.pop("_speed_unique", None)
    _installed["drop"](self)


def _cursor_next(self: Any) -> Any:
    # Stock: self._compute_results(with_limit_and_skip=True)[self._emitted], which slices
    # (copies) the remaining results on every call.
    results = self._compute_results()
    limit = abs(self._limit) if self._limit else None
    index = (self._skip or 0) + self._emitted
    if (limit is not None and self._emitted >= limit) or index >= len(results):
        raise StopIteration
    self._emitted += 1
    return results[index]


_PATCHES = (
    ("Collection", "_iter_documents", _iter_documents),
    ("Collection", "find_one", _find_one),
    ("Collection", "_ensure_uniques", _ensure_uniques),
    ("Collection", "_update", _update),
    ("Cursor", "__next__", _cursor_next),
    ("Cursor", "next", _cursor_next),
)
_STOCK_NAMES = {"_iter_documents": "iter", "_ensure_uniques": "uniques", "_update": "update"}


def accelerate() -> None:
    """Patch mongomock with the index-like lookups (idempotent)."""
    from mongomock import collection as mc
    from mongomock import helpers, store

    if _installed:
        return
    for owner, name, function in _PATCHES:
        cls = getattr(mc, owner)
        _installed[f"{owner}.{name}"] = cls.__dict__[name]
        setattr(cls, name, function)
    for name, key in _STOCK_NAMES.items():
        _installed[key] = _installed[f"Collection.{name}"]
    _installed["find_one"] = _installed["Collection.find_one"]
    mc.copy = _CopyModule()  # type: ignore[assignment]
    # Looked up as helpers.<name> by its callers and by its own recursion.
    _installed["patch_datetimes"] = helpers.patch_datetime_awareness_in_document
    helpers.patch_datetime_awareness_in_document = _patch_datetimes
    _installed["drop"] = store.CollectionStore.drop
    store.CollectionStore.drop = _drop  # type: ignore[method-assign]


def restore() -> None:
    """Undo ``accelerate()`` (tests compare against stock mongomock)."""
    from mongomock import collection as mc
    from mongomock import helpers, store

    if not _installed:
        return
    for owner, name, _ in _PATCHES:
        setattr(getattr(mc, owner), name, _installed[f"{owner}.{name}"])
    mc.copy = copy
    helpers.patch_datetime_awareness_in_document = _installed["patch_datetimes"]
    store.CollectionStore.drop = _installed["drop"]  # type: ignore[method-assign]
    _installed.clear()
