"""Atomic counters (register numbers, arrival numbers)."""

from __future__ import annotations

import threading

from mongoengine import Document, IntField, StringField
from pymongo import ReturnDocument

# mongomock's find_one_and_update is not atomic across threads; a real MongoDB is, and the
# lock costs nothing there, so it is always taken.
_lock = threading.Lock()


class Counter(Document):
    """A named, monotonically increasing counter."""

    key = StringField(required=True, unique=True)
    value = IntField(required=True, default=0)

    meta = {"collection": "counter"}


def next_value(key: str, by: int = 1) -> int:
    """Increment the counter `key` atomically and return its new value."""
    with _lock:
        doc = Counter._get_collection().find_one_and_update(
            {"key": key},
            {"$inc": {"value": by}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    return int(doc["value"])


def peek_value(key: str) -> int:
    """Return the counter's current value without changing it (0 if unused)."""
    doc = Counter._get_collection().find_one({"key": key})
    return int(doc["value"]) if doc else 0
