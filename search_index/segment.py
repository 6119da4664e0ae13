"""Build a Whoosh (W3 codec) segment from analysed documents, fast.

Whoosh's own writer pushes every posting through an external sort and several Python calls
(16 documents/s on the corpus' full texts with a pair field, here). This builder inverts term
counts in memory and writes each term's posting list in blocks, doing the per-posting work in
C (``map``/``array`` calls, big-int arithmetic for delta encoding, ``pickle``, ``zlib``).
Consecutive documents that share the same analysed text (the same circular filed by many
units) are inverted once for the whole run. The files are ordinary W3 segments, so Whoosh
reads, merges and deletes from them as from any other segment.
"""

from __future__ import annotations

import operator
import pickle
import struct
import sys
import zlib
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from itertools import accumulate, chain, repeat
from typing import Any

from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3Segment, W3TermInfo
from whoosh.fields import Schema
from whoosh.filedb import filetables
from whoosh.filedb.filestore import Storage
from whoosh.system import pack_ushort
from whoosh.util.numlists import GrowableArray

from search_index import schema
from search_index.document import PreparedDocument

#: zlib level of the stored-fields column (Whoosh's default is 3).
STORED_LEVEL = 0
#: Postings per block; bigger blocks than Whoosh's 128 mean fewer Python steps per term.
BLOCK_LIMIT = 512
# Terms in at most this many documents keep their postings inside the term info.
INLINE_LIMIT = 8
_INT = struct.Struct("!i")
_LONG = struct.Struct("!q")  # whoosh.system pack_long
# Blocks with fewer postings than this are not worth compressing.
_COMPRESS_MIN = 64
# Lists at least this long get their deltas by big-int arithmetic instead of map().
_SWAR_MIN = 48
_LITTLE = sys.byteorder == "little"
# Block and term length bounds are only used by Whoosh's own scorers to skip blocks; the
# widest bounds are always valid, and computing exact ones would cost a step per posting.
_MIN_LENGTH_BYTE = 0
_MAX_LENGTH_BYTE = 255
#: Term maps that documents are grouped by before numbering: title, body, attachments (the
#: copies of one text stay together, with or without their body: nearby numbers encode small).
GROUP_FIELDS = tuple(
    name + schema.EXACT_SUFFIX for name in (schema.TITLE, schema.TEXT, schema.ATTACHMENT)
)


def _new_postings() -> array:
    # Interleaved (docnum, frequency) pairs.
    return array("I")


def per_document_writer(codec: W3Codec, storage: Storage, segment: W3Segment) -> Any:
    """Return Whoosh's per-document writer, storing fields without deflating them again.

    Whoosh deflates every document's pickled stored fields at level 3 (~120 µs a document
    here); most of ours is the already compressed snippet, so level 0 (stored blocks, ~6 µs)
    adds only ~400 bytes a document. Readers decompress any level.
    """
    perdoc = codec.per_document_writer(storage, segment)
    perdoc._colwriters["_stored"]._child._level = STORED_LEVEL
    return perdoc


class _Run:
    """Consecutive documents sharing one term-count map, inverted together."""

    __slots__ = ("counts", "docs")

    def __init__(self, counts: Counter[str], docnum: int) -> None:
        self.counts = counts
        self.docs = [docnum]


class SegmentBuilder:
    """Collect analysed documents and write them as one new segment of an index."""

    def __init__(
        self, storage: Storage, indexname: str, schema: Schema, segid: str | None = None
    ) -> None:
        self.storage = storage
        self.indexname = indexname
        self.schema = schema
        self.codec = W3Codec()
        self.segment = W3Segment(self.codec, indexname, segid=segid)
        self.perdoc = per_document_writer(self.codec, storage, self.segment)
        self.doccount = 0
        self._postings: dict[str, defaultdict[str, array]] = {}
        self._runs: dict[str, _Run] = {}
        self._fields = {name: schema[name] for name in schema.names()}
        # Fields whose shared term maps group documents in add_all (see GROUP_FIELDS).
        self._group_fields = [n for n in GROUP_FIELDS if n in self._fields]

    def __len__(self) -> int:
        return self.doccount

    def _postings_of(self, name: str) -> defaultdict[str, array]:
        postings = self._postings.get(name)
        if postings is None:
            postings = self._postings[name] = defaultdict(_new_postings)
        return postings

    def _flush_run(self, name: str) -> None:
        run = self._runs.pop(name, None)
        if run is None:
            return
        postings = self._postings_of(name)
        counts = run.counts
        if len(run.docs) == 1:
            # One C-level pass: postings[term].extend((docnum, freq)).
            pairs = zip(repeat(run.docs[0]), counts.values())
            deque(map(array.extend, map(postings.__getitem__, counts), pairs), maxlen=0)
            return
        template = array("I", [x for doc in run.docs for x in (doc, 0)])
        by_freq: dict[int, array] = {}
        for freq in set(counts.values()):
            filled = array("I", template)
            filled[1::2] = array("I", [freq]) * len(run.docs)
            by_freq[freq] = filled
        extend_with = map(by_freq.__getitem__, counts.values())
        deque(map(array.extend, map(postings.__getitem__, counts), extend_with), maxlen=0)

    def add(self, doc: PreparedDocument) -> None:
        """Add one analysed document."""
        docnum = self.doccount
        perdoc = self.perdoc
        fields = self._fields
        perdoc.start_doc(docnum)
        for name, counts in doc.terms.items():
            run = self._runs.get(name)
            if run is not None and run.counts is counts and run.docs[-1] == docnum - 1:
                run.docs.append(docnum)
            else:
                self._flush_run(name)
                self._runs[name] = _Run(counts, docnum)
            perdoc.add_field(name, fields[name], None, doc.lengths.get(name, 0))
        for name in [n for n in self._runs if n not in doc.terms]:
            self._flush_run(name)
        for name, values in doc.tags.items():
            postings = self._postings_of(name)
            for value in set(values):
                postings[value].extend((docnum, 1))
        for name, value in doc.stored.items():
            if value is not None:
                perdoc.add_field(name, fields[name], value, 0)
        for name, value in doc.columns.items():
            fieldobj = fields[name]
            perdoc.add_column_value(name, fieldobj.column_type, fieldobj.to_column_value(value))
        perdoc.finish_doc()
        self.doccount += 1

    def add_all(self, docs: Iterable[PreparedDocument]) -> None:
        """Add several analysed documents, those sharing analysed texts next to each other.

        The order of documents inside a segment means nothing to searches, so copies of one
        text are given consecutive numbers wherever they were in the batch: each run of them
        is inverted once.
        """
        first: dict[int, int] = {}  # id of a term map -> position of its first holder
        keyed = []
        for position, doc in enumerate(docs):
            key = tuple(first.setdefault(id(doc.terms.get(name)), position)
                        for name in self._group_fields)  # fmt: skip
            keyed.append((key, position, doc))
        keyed.sort(key=operator.itemgetter(0, 1))
        for _, _, doc in keyed:
            self.add(doc)

    def finish(self, compound: bool = False) -> W3Segment:
        """Write the postings and per-document files; return the finished segment."""
        for name in list(self._runs):
            self._flush_run(name)
        self.perdoc.close()
        self.segment.set_doc_count(self.doccount)
        terms = TermsWriter(self.segment.create_file(self.storage, W3Codec.TERMS_EXT))
        postings_file = self.segment.create_file(self.storage, W3Codec.POSTS_EXT)
        out = BufferedOut(postings_file)
        fieldmap: dict[str, int] = {}
        terms.extras["fieldmap"] = fieldmap
        for name in sorted(self._postings):
            fieldmap[name] = fieldid = len(fieldmap)
            postings = self._postings[name]
            words = sorted(postings)
            infos = write_pair_lists(out, [postings[word] for word in words])
            terms.add_sorted(list(map(pack_ushort(fieldid).__add__, map(str.encode, words))), infos)
        out.close()
        terms.close()
        self._postings.clear()
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


class BufferedOut:
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


class TermsWriter(filetables.OrderedHashWriter):
    """Whoosh's ordered hash file of terms, written with buffering and CRC32 hashing.

    The file format is Whoosh's own (the hash type is recorded in the header), but adding a
    key costs a few C calls instead of several Python method calls and an MD5.
    """

    def __init__(self, dbfile: Any) -> None:
        filetables.HashWriter.__init__(self, dbfile, hashtype=1)
        self.index = GrowableArray("q")
        self._out = BufferedOut(dbfile)
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
#: Postings encoded together by write_pair_lists (bounds its temporary buffers).
_CHUNK_POSTINGS = 1 << 20
# Pickle (protocol 2) pieces of a block's data tuple: (deltas tuple, freqs tuple or None, None).
_PICKLE_HEAD = b"\x80\x02("  # PROTO 2, MARK
_PICKLE_TUPLE = b"t"
_PICKLE_OPEN = b"("
_PICKLE_NONE = b"N"
_PICKLE_TAIL = b"N\x87."  # None, TUPLE3, STOP


def _pickle_int(value: int) -> bytes:
    """Return the protocol-2 pickle opcode of a non-negative int below 2**31."""
    if value < 256:
        return b"K" + value.to_bytes(1, "little")
    if value < 65536:
        return b"M" + value.to_bytes(2, "little")
    return b"J" + value.to_bytes(4, "little")


class _IntCodes:
    """Pickle opcodes of every value of an int array, built in bulk, sliced per block.

    ``K`` + 1 byte holds values below 256, ``M`` + 2 bytes below 65536, ``J`` + 4 bytes the
    rest (below 2**31); a block uses the narrowest code that holds its largest value.
    """

    def __init__(self, values: array) -> None:
        self.raw = values.tobytes()  # little-endian 32-bit lanes
        self.count = len(values)
        self._codes: dict[int, bytearray] = {}

    def _built(self, width: int, opcode: bytes) -> bytearray:
        codes = self._codes.get(width)
        if codes is None:
            step = width + 1
            codes = bytearray(step * self.count)
            codes[0::step] = opcode * self.count
            for byte in range(width):
                codes[1 + byte :: step] = self.raw[byte::4]
            self._codes[width] = codes
        return codes

    def slice(self, start: int, end: int, largest: int) -> bytearray:
        """Return the opcodes of values[start:end], whose maximum is ``largest``."""
        if largest < 256:
            return self._built(1, b"K")[2 * start : 2 * end]
        if largest < 65536:
            return self._built(2, b"M")[3 * start : 3 * end]
        return self._built(4, b"J")[5 * start : 5 * end]


def write_pair_lists(out: BufferedOut, lists: list[array]) -> list[bytes]:
    """Write the interleaved (docnum, freq) posting lists of many terms; return term infos.

    Produces the same blocks as term_info() (Whoosh pickles), but deltas and pickle opcodes
    are computed for a million postings at a time instead of term by term.
    """
    if not _LITTLE:
        return [_term_info(out, pairs) for pairs in lists]
    infos = [b""] * len(lists)
    chunk: list[int] = []
    size = 0
    for index, pairs in enumerate(lists):
        count = len(pairs) >> 1
        if count <= INLINE_LIMIT:
            infos[index] = _term_info(out, pairs)
            continue
        chunk.append(index)
        size += count
        if size >= _CHUNK_POSTINGS:
            _write_chunk(out, lists, chunk, infos)
            chunk = []
            size = 0
    if chunk:
        _write_chunk(out, lists, chunk, infos)
    return infos


def _write_chunk(
    out: BufferedOut, lists: list[array], chunk: list[int], infos: list[bytes]
) -> None:
    joined = array("I")
    joined.frombytes(b"".join([lists[i] for i in chunk]))
    ids = joined[0::2]
    freqs = joined[1::2]
    del joined
    # Differences with the previous posting; wrong (even negative) at each term's start,
    # where the block's first id is written whole instead.
    deltas = array("i", map(operator.sub, ids, chain((0,), ids)))
    chunk_codes = (_IntCodes(deltas), _IntCodes(freqs))
    start = 0
    for index in chunk:
        end = start + (len(lists[index]) >> 1)
        infos[index] = _write_term(out, ids, freqs, deltas, chunk_codes, start, end)
        start = end


def _block(
    ids: array,
    freqs: array,
    deltas: array,
    codes: tuple[_IntCodes, _IntCodes],
    start: int,
    end: int,
) -> tuple[bytes, int, int]:
    """Return the pickled data of the block ids[start:end], its largest and summed freqs."""
    weights = freqs[start:end]
    fmax = max(weights)
    rest = deltas[start + 1 : end]
    parts: list[bytes | bytearray] = [_PICKLE_HEAD, _pickle_int(ids[start])]
    if rest:
        parts.append(codes[0].slice(start + 1, end, max(rest)))
    parts.append(_PICKLE_TUPLE)
    if fmax == 1:
        parts.append(_PICKLE_NONE)
    else:
        parts += (_PICKLE_OPEN, codes[1].slice(start, end, fmax), _PICKLE_TUPLE)
    parts.append(_PICKLE_TAIL)
    return b"".join(parts), fmax, sum(weights)


def _write_term(
    out: BufferedOut,
    ids: array,
    freqs: array,
    deltas: array,
    codes: tuple[_IntCodes, _IntCodes],
    start: int,
    end: int,
) -> bytes:
    """Write the postings ids[start:end] of one term in W3 blocks; return its term info."""
    offset = out.offset
    parts = [WHOOSH3_HEADER_MAGIC]
    fmax = total = 0
    for lo in range(start, end, BLOCK_LIMIT):
        hi = min(lo + BLOCK_LIMIT, end)
        data, blockmax, weight = _block(ids, freqs, deltas, codes, lo, hi)
        fmax = max(fmax, blockmax)
        total += weight
        comp = 1 if end - start > BLOCK_LIMIT or end - start >= _COMPRESS_MIN else 0
        if comp:
            data = zlib.compress(data, 1)
        info = pickle.dumps(
            (hi - lo, ids[hi - 1], float(blockmax), comp, _MIN_LENGTH_BYTE, _MAX_LENGTH_BYTE), 2
        )
        blocklength = len(info) + len(data)
        parts += (_INT.pack(-blocklength if hi == end else blocklength), info, data)
    out.write(b"".join(parts))
    head = _TERMINFO.pack(
        0,
        float(total),
        end - start,
        _MIN_LENGTH_BYTE,
        _MAX_LENGTH_BYTE,
        float(fmax),
        ids[start],
        ids[end - 1],
    )
    return head + _LONG.pack(offset) + _INT.pack(out.offset - offset)


def _term_info(out: BufferedOut, pairs: array) -> bytes:
    """Write a term's interleaved (docnum, freq) postings; return its term info bytes."""
    return term_info(out, pairs[0::2], pairs[1::2])


def term_info(out: BufferedOut, ids: array, freqs: array) -> bytes:
    """Write a term's postings (or inline them) and return its term info bytes."""
    count = len(ids)
    fmax = max(freqs)
    if count <= INLINE_LIMIT:
        head = _TERMINFO.pack(
            1,
            float(sum(freqs)),
            count,
            _MIN_LENGTH_BYTE,
            _MAX_LENGTH_BYTE,
            float(fmax),
            ids[0],
            ids[-1],
        )
        weights = tuple(map(float, freqs))
        return head + pickle.dumps((tuple(ids), weights, None), 2)
    if count <= BLOCK_LIMIT:
        return _single_block(out, ids, freqs, fmax)
    return _write_postings(out, ids, freqs, fmax)


def _deltas(ids: array) -> array:
    """Return ids[i] - ids[i - 1] (ids[0] first) for strictly increasing 32-bit ids."""
    if len(ids) < _SWAR_MIN or not _LITTLE:
        return array("I", map(operator.sub, ids, chain((0,), ids)))
    # Treat the array as one big integer of 32-bit lanes and subtract it from itself shifted
    # by one lane: every lane is larger than the one before it, so no lane borrows.
    width = 32 * len(ids)
    value = int.from_bytes(ids.tobytes(), "little")
    shifted = (value << 32) & ((1 << width) - 1)
    result = array("I")
    result.frombytes((value - shifted).to_bytes(4 * len(ids), "little"))
    return result


def _single_block(out: BufferedOut, ids: array, freqs: array, fmax: int) -> bytes:
    """Write a posting list that fits in one block; return its term info bytes."""
    count = len(ids)
    data = pickle.dumps((tuple(_deltas(ids)), None if fmax == 1 else tuple(freqs), None), 2)
    comp = 0
    if count >= _COMPRESS_MIN:
        comp = 1
        data = zlib.compress(data, comp)
    info = pickle.dumps((count, ids[-1], float(fmax), comp, _MIN_LENGTH_BYTE, _MAX_LENGTH_BYTE), 2)
    start = out.offset
    out.write(WHOOSH3_HEADER_MAGIC + _INT.pack(-(len(info) + len(data))) + info + data)
    head = _TERMINFO.pack(
        0,
        float(sum(freqs)),
        count,
        _MIN_LENGTH_BYTE,
        _MAX_LENGTH_BYTE,
        float(fmax),
        ids[0],
        ids[-1],
    )
    return head + _LONG.pack(start) + _INT.pack(out.offset - start)


def _write_postings(out: BufferedOut, ids: array, freqs: array, fmax: int) -> bytes:
    """Write a posting list in several blocks (W3 format); return its term info bytes."""
    start = out.offset
    parts = [WHOOSH3_HEADER_MAGIC]
    total = len(ids)
    deltas = _deltas(ids)
    for lo in range(0, total, BLOCK_LIMIT):
        hi = min(lo + BLOCK_LIMIT, total)
        block_deltas = deltas[lo:hi]
        block_deltas[0] = ids[lo]  # Whoosh decodes each block's deltas from zero
        weights = freqs[lo:hi]
        blockmax = max(weights)
        data = pickle.dumps(
            (tuple(block_deltas), None if blockmax == 1 else tuple(weights), None), 2
        )
        data = zlib.compress(data, 1)
        info = pickle.dumps(
            (hi - lo, ids[hi - 1], float(blockmax), 1, _MIN_LENGTH_BYTE, _MAX_LENGTH_BYTE), 2
        )
        blocklength = len(info) + len(data)
        parts.append(_INT.pack(-blocklength if hi == total else blocklength))
        parts.append(info)
        parts.append(data)
    out.write(b"".join(parts))
    head = _TERMINFO.pack(
        0,
        float(sum(freqs)),
        total,
        _MIN_LENGTH_BYTE,
        _MAX_LENGTH_BYTE,
        float(fmax),
        ids[0],
        ids[-1],
    )
    return head + _LONG.pack(start) + _INT.pack(out.offset - start)
