"""Build a Whoosh (W3 codec) segment from analysed documents, fast.

Whoosh's own writer pushes every posting through an external sort and several Python calls
(about 114 documents/s here with a pair field). This builder inverts term counts in memory
(one array append per posting) and writes each term's posting list in blocks with C-level
helpers (``pickle``, ``zlib``, ``map``). The files it writes are ordinary W3 segments, so
Whoosh reads, merges and deletes from them as from any other segment.
"""

from __future__ import annotations

import operator
import pickle
import struct
import zlib
from array import array
from collections import defaultdict, deque
from collections.abc import Iterable
from itertools import accumulate, chain, repeat
from typing import Any

from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3Segment, W3TermInfo
from whoosh.fields import Schema
from whoosh.filedb import filetables
from whoosh.filedb.filestore import Storage
from whoosh.system import pack_ushort
from whoosh.util.numeric import length_to_byte
from whoosh.util.numlists import GrowableArray

from search_index.document import PreparedDocument

#: Postings per block; bigger blocks than Whoosh's 128 mean fewer Python steps per term.
BLOCK_LIMIT = 512
# Terms in at most this many documents keep their postings inside the term info.
INLINE_LIMIT = 2
_INT = struct.Struct("!i")
_LONG = struct.Struct("!q")  # whoosh.system pack_long
# Blocks with fewer postings than this are not worth compressing.
_COMPRESS_MIN = 16


# A posting is packed as docnum << FREQ_BITS | freq in one array item (one append each).
FREQ_BITS = 20
FREQ_MAX = (1 << FREQ_BITS) - 1


def _new_postings() -> array:
    return array("Q")


class SegmentBuilder:
    """Collect analysed documents and write them as one new segment of an index."""

    def __init__(self, storage: Storage, indexname: str, schema: Schema) -> None:
        self.storage = storage
        self.indexname = indexname
        self.schema = schema
        self.codec = W3Codec()
        self.segment: W3Segment = self.codec.new_segment(storage, indexname)
        self.perdoc = self.codec.per_document_writer(storage, self.segment)
        self.doccount = 0
        self._postings: dict[str, defaultdict[str, array]] = {}
        self._lengths: dict[str, array] = {}
        self._fields = {name: schema[name] for name in schema.names()}

    def __len__(self) -> int:
        return self.doccount

    def add(self, doc: PreparedDocument) -> None:
        """Add one analysed document."""
        docnum = self.doccount
        perdoc = self.perdoc
        fields = self._fields
        perdoc.start_doc(docnum)
        base = docnum << FREQ_BITS
        for name, counts in doc.terms.items():
            postings = self._postings.get(name)
            if postings is None:
                postings = self._postings[name] = defaultdict(_new_postings)
            # One C-level pass: postings[term].append(base | min(freq, FREQ_MAX)).
            deque(
                map(
                    array.append,
                    map(postings.__getitem__, counts),
                    map(base.__or__, map(min, counts.values(), repeat(FREQ_MAX))),
                ),
                maxlen=0,
            )
            length = doc.lengths.get(name, 0)
            lengths = self._lengths.get(name)
            if lengths is None:
                lengths = self._lengths[name] = array("I", bytes(4 * docnum))
            lengths.append(length)
            perdoc.add_field(name, fields[name], None, length)
        for name, values in doc.tags.items():
            postings = self._postings.get(name)
            if postings is None:
                postings = self._postings[name] = defaultdict(_new_postings)
            for value in set(values):
                postings[value].append(base | 1)
        for name, value in doc.stored.items():
            if value is not None:
                perdoc.add_field(name, fields[name], value, 0)
        for name, value in doc.columns.items():
            fieldobj = fields[name]
            perdoc.add_column_value(name, fieldobj.column_type, fieldobj.to_column_value(value))
        perdoc.finish_doc()
        for lengths in self._lengths.values():
            if len(lengths) <= docnum:
                lengths.append(0)
        self.doccount += 1

    def add_all(self, docs: Iterable[PreparedDocument]) -> None:
        """Add several analysed documents."""
        for doc in docs:
            self.add(doc)

    def finish(self, compound: bool = False) -> W3Segment:
        """Write the postings and per-document files; return the finished segment."""
        self.perdoc.close()
        self.segment.set_doc_count(self.doccount)
        terms = _TermsWriter(self.segment.create_file(self.storage, W3Codec.TERMS_EXT))
        postings_file = self.segment.create_file(self.storage, W3Codec.POSTS_EXT)
        out = _BufferedOut(postings_file)
        fieldmap: dict[str, int] = {}
        terms.extras["fieldmap"] = fieldmap
        for name in sorted(self._postings):
            fieldmap[name] = fieldid = len(fieldmap)
            lengths = self._lengths.get(name) if self._fields[name].scorable else None
            # Whoosh keeps lengths as one byte each (a monotonic log scale).
            lenbytes = array("B", map(length_to_byte, lengths)) if lengths else None
            postings = self._postings[name]
            words = sorted(postings)
            infos = [_term_info(out, postings[word], lenbytes) for word in words]
            terms.add_sorted(list(map(pack_ushort(fieldid).__add__, map(str.encode, words))), infos)
        out.close()
        terms.close()
        self._postings.clear()
        self._lengths.clear()
        if compound and self.segment.should_assemble():
            self.segment.create_compound_file(self.storage)
            self.segment.compound = True
        return self.segment

    def cancel(self) -> None:
        """Drop what was written for this segment."""
        if not self.perdoc.is_closed:
            self.perdoc.close()
        for name in list(self.storage.list()):
            if name.startswith(f"{self.indexname}_{self.segment.segid}"):
                self.storage.delete_file(name)


class _BufferedOut:
    """Append-only output that tracks its own offset and writes in large chunks."""

    def __init__(self, structfile: Any) -> None:
        self.file = structfile
        self.offset = structfile.tell()
        self.parts: list[bytes] = []
        self.pending = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.offset += len(data)
        self.pending += len(data)
        if self.pending > 1 << 22:
            self.flush()

    def flush(self) -> None:
        self.file.write(b"".join(self.parts))
        self.parts.clear()
        self.pending = 0

    def close(self) -> None:
        self.flush()
        self.file.close()


class _TermsWriter(filetables.OrderedHashWriter):
    """Whoosh's ordered hash file of terms, written with buffering and CRC32 hashing.

    The file format is Whoosh's own (the hash type is recorded in the header), but adding a
    key costs a few C calls instead of several Python method calls and an MD5.
    """

    def __init__(self, dbfile: Any) -> None:
        filetables.HashWriter.__init__(self, dbfile, hashtype=1)
        self.index = GrowableArray("q")
        self._out = _BufferedOut(dbfile)
        self._positions = array("q")
        self._hashes = array("Q")

    def add_sorted(self, keys: list[bytes], values: list[bytes]) -> None:
        """Append key/value records; keys must be sorted and greater than earlier ones."""
        if not keys:
            return
        out = self._out
        klens = list(map(len, keys))
        vlens = list(map(len, values))
        sizes = map(operator.add, map(operator.add, klens, vlens), repeat(_LENGTHS.size))
        self._positions.extend(accumulate(chain((out.offset,), sizes)))
        self._positions.pop()  # the offset after the last record
        self._hashes.extend(map(zlib.crc32, keys))
        heads = map(_LENGTHS.pack, klens, vlens)
        out.write(b"".join(chain.from_iterable(zip(heads, keys, values, strict=True))))

    def _write_hashes(self) -> None:
        self._out.flush()
        buckets: list[list[tuple[int, int]]] = [[] for _ in range(256)]
        for hashval, pos in zip(self._hashes, self._positions, strict=True):
            buckets[hashval & 255].append((hashval, pos))
        self.index.array = self._positions
        dbfile = self.dbfile
        for entries in buckets:
            numslots = 2 * len(entries)
            self.directory.append((dbfile.tell(), numslots))
            table = [(0, 0)] * numslots
            for hashval, pos in entries:
                slot = (hashval >> 8) % numslots
                while table[slot][1]:
                    slot = (slot + 1) % numslots
                table[slot] = (hashval, pos)
            if numslots:
                flat = [x for entry in table for x in entry]
                dbfile.write(struct.pack("!" + "Iq" * numslots, *flat))


_LENGTHS = struct.Struct("!ii")
_TERMINFO = W3TermInfo._struct


def _term_info(out: _BufferedOut, packed: array, lenbytes: array | None) -> bytes:
    """Write a term's postings (or inline them) and return its term info bytes."""
    count = len(packed)
    if count == 1:
        return _single_info(packed[0], lenbytes)
    if count <= INLINE_LIMIT:
        return _inline_info(packed, lenbytes)
    ids = array("I", map(operator.rshift, packed, repeat(FREQ_BITS)))
    freqs = array("I", map(operator.and_, packed, repeat(FREQ_MAX)))
    if count <= BLOCK_LIMIT:
        return _single_block(out, ids, freqs, lenbytes)
    return _write_postings(out, ids, freqs, lenbytes)


def _single_block(out: _BufferedOut, ids: array, freqs: array, lenbytes: array | None) -> bytes:
    """Write a posting list that fits in one block; return its term info bytes."""
    count = len(ids)
    fmax = max(freqs)
    deltas = tuple(map(operator.sub, ids, chain((0,), ids)))
    data = pickle.dumps((deltas, None if fmax == 1 else tuple(freqs), None), 2)
    comp = 0
    if count >= _COMPRESS_MIN:
        comp = 3
        data = zlib.compress(data, comp)
    if lenbytes is not None:
        blocklengths = bytes(map(lenbytes.__getitem__, ids))
        bmin, bmax = min(blocklengths), max(blocklengths)
    else:
        bmin = bmax = 0
    info = pickle.dumps((count, ids[-1], float(fmax), comp, bmin, bmax), 2)
    start = out.offset
    out.write(WHOOSH3_HEADER_MAGIC + _INT.pack(-(len(info) + len(data))) + info + data)
    head = _TERMINFO.pack(0, float(sum(freqs)), count, bmin, bmax, float(fmax), ids[0], ids[-1])
    return head + _LONG.pack(start) + _INT.pack(out.offset - start)


def _single_info(posting: int, lenbytes: array | None) -> bytes:
    """Return term info bytes for a term found in one document (postings inline)."""
    docnum = posting >> FREQ_BITS
    weight = float(posting & FREQ_MAX)
    lb = lenbytes[docnum] if lenbytes is not None else 0
    head = _TERMINFO.pack(1, weight, 1, lb, lb, weight, docnum, docnum)
    return head + pickle.dumps(((docnum,), (weight,), None), 2)


def _inline_info(packed: array, lenbytes: array | None) -> bytes:
    """Return term info bytes with the (few) postings stored inline."""
    ids = tuple(p >> FREQ_BITS for p in packed)
    weights = tuple(float(p & FREQ_MAX) for p in packed)
    if lenbytes is not None:
        doclens = [lenbytes[i] for i in ids]
        minlen, maxlen = min(doclens), max(doclens)
    else:
        minlen = maxlen = 0
    head = _TERMINFO.pack(1, sum(weights), len(ids), minlen, maxlen, max(weights), ids[0], ids[-1])
    return head + pickle.dumps((ids, weights, None), 2)


def _write_postings(
    postfile: _BufferedOut, docs: array, freqs: array, lenbytes: array | None
) -> bytes:
    """Write one term's posting blocks in the W3 format; return its term info bytes."""
    start = postfile.offset
    parts = [WHOOSH3_HEADER_MAGIC]
    total = len(docs)
    minlength = 255
    maxlength = 0
    for lo in range(0, total, BLOCK_LIMIT):
        hi = min(lo + BLOCK_LIMIT, total)
        ids = docs[lo:hi]
        weights = freqs[lo:hi]
        # Whoosh decodes the deltas of each block starting from zero.
        deltas = tuple(map(operator.sub, ids, chain((0,), ids)))
        blockmax = max(weights)
        databytes = pickle.dumps((deltas, None if blockmax == 1 else tuple(weights), None), 2)
        comp = 3 if hi - lo >= _COMPRESS_MIN else 0
        if comp:
            databytes = zlib.compress(databytes, comp)
        if lenbytes is not None:
            blocklengths = bytes(map(lenbytes.__getitem__, ids))
            bmin, bmax = min(blocklengths), max(blocklengths)
            minlength = min(minlength, bmin)
            maxlength = max(maxlength, bmax)
        else:
            bmin = bmax = 0
        infobytes = pickle.dumps((hi - lo, ids[-1], float(blockmax), comp, bmin, bmax), 2)
        blocklength = len(infobytes) + len(databytes)
        parts.append(_INT.pack(-blocklength if hi == total else blocklength))
        parts.append(infobytes)
        parts.append(databytes)
    postfile.write(b"".join(parts))
    if lenbytes is None:
        minlength = 0
    head = _TERMINFO.pack(
        0, float(sum(freqs)), total, minlength, maxlength, float(max(freqs)), docs[0], docs[-1]
    )
    return head + _LONG.pack(start) + _INT.pack(postfile.offset - start)
