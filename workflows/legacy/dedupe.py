"""Find legacy ids repeated inside one export, cheaply."""

from __future__ import annotations

import hashlib

from . import rows as r


class DuplicateTracker:
    """Remember the first row of each legacy id seen in one export.

    Keys are 8-byte BLAKE2b digests of the id (about 100 bytes per id in a dict: ~10 MB for
    100k documents, ~100 MB for a million). A collision would need ~4 billion ids to become
    likely. For resumable imports the orchestrator can rebuild it by re-reading ids, or ask
    the database instead (an id already stored by this batch at another row is a duplicate).
    """

    def __init__(self) -> None:
        self._first_row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._first_row)

    @staticmethod
    def _key(legacy_id: str) -> int:
        digest = hashlib.blake2b(legacy_id.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def first_row(self, legacy_id: str, row: int) -> int | None:
        """Record ``legacy_id`` at ``row``; return the earlier row if it was already seen."""
        key = self._key(legacy_id)
        first = self._first_row.setdefault(key, row)
        return None if first == row else first

    def problem(self, legacy_id: str, row: int) -> r.Problem | None:
        """Return a reject problem when ``legacy_id`` already appeared at an earlier row."""
        first = self.first_row(legacy_id, row)
        if first is None:
            return None
        return r.Problem(
            r.DUPLICATE,
            f"Trùng số hiệu cũ '{legacy_id}' với dòng {first}: bỏ qua dòng này.",
            "legacy_id",
            r.REJECT,
        )
