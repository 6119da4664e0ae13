"""Read whole posting lists of a Whoosh W3 segment as arrays and document masks, with caches.

A mask is a Python ``int`` holding one byte per document of the segment (``1`` = in the set):
``&``, ``|``, ``bit_count()`` and conversions run in C, so counting and filtering thousands of
documents costs microseconds instead of a Python step per document.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import struct
import threading
import zlib
from array import array
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from itertools import accumulate, compress, repeat
from typing import Any

from whoosh.codec.whoosh3 import W3Codec
from whoosh.filedb.structfile import StructFile
from whoosh.reading import SegmentReader
from whoosh.system import pack_ushort

_TERMINFO = struct.Struct("!BfIBBfII")
_EXTENT = struct.Struct("!qi")
_INT = struct.Struct("!i")
_MAGIC = b"W3Bl"


class LRUCache:
    """A thread-safe LRU map bounded by an approximate byte size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """Return the cached value or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        """Cache a value whose size is about ``nbytes``."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._items[key] = (value, nbytes)
            self.size += nbytes
            while self.size > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self.size -= dropped

    def drop_prefix(self, segid: str) -> None:
        """Forget everything cached for a segment that left the index."""
        with self._lock:
            for key in [k for k in self._items if isinstance(k, tuple) and k[0] == segid]:
                self.size -= self._items.pop(key)[1]


#: Decoded postings and masks of frequently used terms, shared by all searches.
CACHE = LRUCache(384 * 1024 * 1024)


def ones(n: int) -> int:
    """Return the mask with every one of ``n`` documents set."""
    return int.from_bytes(b"\x01" * n, "little")


def mask_of(docs: Iterable[int], n: int) -> int:
    """Return the mask of the given document numbers."""
    buf = bytearray(n)
    deque(map(buf.__setitem__, docs, repeat(1)), maxlen=0)
    return int.from_bytes(buf, "little")


def mask_bytes(mask: int, n: int) -> bytes:
    """Return a mask as ``n`` bytes (``b[doc]`` is 1 for members)."""
    return mask.to_bytes(n, "little")


def members(mask: int, n: int) -> list[int]:
    """Return the document numbers in a mask, ascending."""
    return list(compress(range(n), mask.to_bytes(n, "little")))


def _map_files(reader: SegmentReader) -> None:
    """Read a segment's term and posting files through mmap (Whoosh seeks and reads)."""
    segment = reader.segment()
    storage = reader.storage()
    if segment.is_compound() or not hasattr(storage, "_fpath"):
        return  # compound segments are already read through mmap by Whoosh
    terms = reader._terms
    mapped = []
    for ext in (W3Codec.TERMS_EXT, W3Codec.POSTS_EXT):
        path = storage._fpath(segment.make_filename(ext))
        if os.path.getsize(path) == 0:
            return
        with open(path, "rb") as handle:
            mapped.append(StructFile(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)))
    terms._dbfile.close()
    terms._postfile.close()
    tindex = terms._tindex
    tindex.dbfile = terms._dbfile = mapped[0]
    # The ordered hash reader keeps a bound reader of its position index.
    tindex._get_pos = getattr(mapped[0], tindex._get_pos.__name__)
    terms._postfile = mapped[1]


class SegmentView:
    """Fast access to one segment's postings, lengths, columns and deletions."""

    def __init__(self, reader: SegmentReader) -> None:
        self.reader = reader
        self.segid: str = reader.segment().segment_id()
        self.n: int = reader.doc_count_all()
        terms = reader._terms
        _map_files(reader)
        self._tindex = terms._tindex
        self._postfile = terms._postfile
        self._fieldmap: dict[str, int] = terms._fieldmap
        deleted = list(reader.segment().deleted_docs())
        self.live: int = ones(self.n) & ~mask_of(deleted, self.n) if deleted else ones(self.n)
        self.live_count = self.n - len(deleted)

    # Terms

    def _key(self, field: str, term: str) -> bytes | None:
        fieldid = self._fieldmap.get(field)
        if fieldid is None:
            return None
        return pack_ushort(fieldid) + term.encode("utf-8")

    def term_stats(self, field: str, term: str) -> tuple[int, float, int] | None:
        """Return ``(doc frequency, max frequency, min length byte)`` or None if absent."""
        key = self._key(field, term)
        if key is None:
            return None
        try:
            raw = self._tindex[key]
        except KeyError:
            return None
        _, _, df, minlen, _, maxweight, _, _ = _TERMINFO.unpack_from(raw)
        return df, maxweight, minlen

    def postings(self, field: str, term: str) -> tuple[array, array] | None:
        """Return ``(document numbers, frequencies)`` of a term, or None if absent."""
        cache_key = (self.segid, "p", field, term)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit
        key = self._key(field, term)
        if key is None:
            return None
        try:
            raw = self._tindex[key]
        except KeyError:
            return None
        result = self._decode(raw)
        CACHE.put(cache_key, result, 8 * len(result[0]) + 200)
        return result

    def _decode(self, raw: bytes) -> tuple[array, array]:
        if raw[0]:
            # Whoosh's own format pickles posting data; the index is written only by us.
            ids, weights, _ = pickle.loads(raw[_TERMINFO.size :])  # noqa: S301
            return array("I", ids), array("I", map(int, weights))
        offset, length = _EXTENT.unpack_from(raw, _TERMINFO.size)
        data = self._postfile.get(offset, length)
        if data[:4] != _MAGIC:
            raise ValueError("bad posting list header")
        docs = array("I")
        freqs = array("I")
        stream = io.BytesIO(data)
        pos = 4
        while True:
            blocklen = _INT.unpack_from(data, pos)[0]
            last = blocklen < 0
            blocklen = abs(blocklen)
            stream.seek(pos + 4)
            count, _, _, comp, _, _ = pickle.load(stream)  # noqa: S301
            start = stream.tell()
            end = pos + 4 + blocklen
            block = data[start:end]
            if comp:
                block = zlib.decompress(block)
            deltas, weights, _ = pickle.loads(block)  # noqa: S301
            docs.extend(accumulate(deltas))
            if weights is None:
                freqs.extend(repeat(1, count))
            elif isinstance(weights, float):
                freqs.extend(repeat(int(weights), count))
            else:
                freqs.extend(map(int, weights))
            if last:
                break
            pos = end
        return docs, freqs

    def mask(self, field: str, term: str) -> int:
        """Return the mask of documents holding a term (0 when none)."""
        cache_key = (self.segid, "m", field, term)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit
        found = self.postings(field, term)
        result = mask_of(found[0], self.n) if found else 0
        CACHE.put(cache_key, result, self.n + 100 if result else 100)
        return result

    def values(self, field: str) -> list[str]:
        """Return every value of a tag field present in this segment."""
        cache_key = (self.segid, "v", field)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit
        fieldid = self._fieldmap.get(field)
        result: list[str] = []
        if fieldid is not None:
            prefix = pack_ushort(fieldid)
            for key in self._tindex.keys_from(prefix):
                if not key.startswith(prefix):
                    break
                result.append(key[2:].decode("utf-8"))
        CACHE.put(cache_key, result, 64 * len(result) + 100)
        return result

    def value_column(self, field: str) -> tuple[int, list[str]] | None:
        """Return ``(lanes, values)`` for a single-valued tag field with under 256 values.

        ``lanes`` holds one byte per document: its value's number + 1 (0 = no value), in the
        same layout as masks, so ``(mask * 255) & lanes`` keeps the values of a mask's
        documents. None when a document holds several values or there are too many values.
        """
        cache_key = (self.segid, "vc", field)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit or None
        values = self.values(field)
        result: tuple = ()
        if len(values) < 256:
            column = bytearray(self.n)
            total = 0
            for number, value in enumerate(values, start=1):
                found = self.postings(field, value)
                if found is not None:
                    total += len(found[0])
                    deque(map(column.__setitem__, found[0], repeat(number)), maxlen=0)
            if total == self.n - column.count(0):  # no document holds two values
                result = (int.from_bytes(column, "little"), values)
        CACHE.put(cache_key, result, self.n + 64 * len(values) + 100)
        return result or None

    # Per-document columns

    def _column_bytes(self, name: str) -> bytes:
        perdoc = self.reader._perdoc
        if not perdoc.has_column(name):
            return b""
        colfile, offset, length = perdoc._get_column_file(name)
        try:
            return bytes(colfile.get(offset, length))
        finally:
            colfile.close()

    def length_bytes(self, field: str) -> bytes:
        """Return the per-document length bytes of a scored field (Whoosh's log scale)."""
        cache_key = (self.segid, "l", field)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit
        raw = self._column_bytes(f"_{field}_len")
        result = raw[: self.n] + bytes(max(0, self.n - len(raw)))
        CACHE.put(cache_key, result, self.n + 100)
        return result

    def numeric_column(self, name: str, typecode: str) -> array:
        """Return a numeric column for every document of the segment (0 when missing)."""
        cache_key = (self.segid, "c", name)
        hit = CACHE.get(cache_key)
        if hit is not None:
            return hit
        result = array(typecode)
        raw = self._column_bytes(name)
        result.frombytes(raw[: result.itemsize * self.n])
        if struct.pack("=i", 1) != struct.pack("!i", 1):
            result.byteswap()  # Whoosh writes columns big-endian
        result.extend(repeat(0, self.n - len(result)))
        CACHE.put(cache_key, result, result.itemsize * self.n + 100)
        return result

    def date_keys(self) -> array:
        """Return the per-document date sort keys (ordinal days, 0 when unknown)."""
        return self.numeric_column("date_key", "q")

    def stored(self, docnum: int) -> dict[str, Any]:
        """Return the stored fields of a document."""
        return self.reader.stored_fields(docnum)
