"""Whoosh W3 posting lists and term infos of many terms, encoded at once with numpy.

A segment holds hundreds of thousands of terms, most with a handful of postings; encoding
them one by one costs a few Python steps each (4-36 µs a term here). Every piece of the
format is a pickle of ints and floats, so all pieces are computed for a whole chunk of
terms as arrays of bytes and cut into records by one gather:

- a term with at most ``INLINE_LIMIT`` postings keeps them in its term info:
  ``(ids, float weights, None)``;
- others are written to the postings file in blocks of at most ``BLOCK_LIMIT`` postings:
  a length, the block info ``(count, last id, max weight, compressed, 0, 255)`` and the
  data ``(first id then deltas, weights or None when all are 1, None)``, compressed with
  zlib when the term has ``COMPRESS_MIN`` postings or more (one ``zlib`` call a block).

Ints are pickled with the narrowest opcode each (``K``, ``M``, ``J``), tuples with
``MARK ... TUPLE``: ``pickle.loads`` reads them as Whoosh's own pickles.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC

#: Postings per block (Whoosh's own is 128: bigger blocks mean fewer steps per term).
BLOCK_LIMIT = 512
#: Terms in at most this many documents keep their postings inside the term info.
INLINE_LIMIT = 8
#: Terms with fewer postings than this are not worth compressing.
COMPRESS_MIN = 64
#: Postings encoded together (bounds the temporary arrays: ~60 bytes a posting).
CHUNK_POSTINGS = 1 << 20
# Block and term length bounds are only used by Whoosh's own scorers to skip blocks; the
# widest bounds are always valid, and computing exact ones would cost a step per posting.
MIN_LENGTH_BYTE = 0
MAX_LENGTH_BYTE = 255

# W3TermInfo's struct "!BfIBBfII", then (for postings in the postings file) "!qi".
_HEAD_SPEC = [
    ("flags", "u1"),
    ("weight", ">f4"),
    ("df", ">u4"),
    ("minlength", "u1"),
    ("maxlength", "u1"),
    ("maxweight", ">f4"),
    ("minid", ">u4"),
    ("maxid", ">u4"),
]
_HEAD_FIELDS = [name for name, _ in _HEAD_SPEC]
_HEAD = np.dtype(_HEAD_SPEC)
_HEAD_POINTER = np.dtype([*_HEAD_SPEC, ("offset", ">i8"), ("length", ">i4")])
_INT = struct.Struct("!i")

# Constant pickle pieces, all in one buffer; _CONST[name] = (start, length).
_PIECES = {
    "head": b"\x80\x02(",  # PROTO 2, MARK
    "tuple": b"t",
    "next": b"t(",  # TUPLE, MARK
    "open": b"(",
    "none": b"N",
    "empty": b"",
    "tail": b"N\x87.",  # None, TUPLE3, STOP
    "inline_tail": b"tN\x87.",
    "comp0": b"K\x00",
    "comp1": b"K\x01",
    "info_tail": bytes([0x4B, MIN_LENGTH_BYTE, 0x4B, MAX_LENGTH_BYTE]) + b"t.",
    "magic": WHOOSH3_HEADER_MAGIC,
}
_CONST_BYTES = np.frombuffer(b"".join(_PIECES.values()), np.uint8)
_PIECE_STARTS = np.cumsum([0] + [len(p) for p in _PIECES.values()]).tolist()
_CONST = {name: (_PIECE_STARTS[i], len(p)) for i, (name, p) in enumerate(_PIECES.items())}

Piece = tuple[np.ndarray, Any, Any]  # (bytes, start per record, length per record)


def _const(name: str) -> Piece:
    start, length = _CONST[name]
    return _CONST_BYTES, start, length


def _chosen(flags: np.ndarray, yes: str, no: str) -> Piece:
    """A constant piece that is ``yes`` where ``flags`` holds, else ``no``."""
    (ystart, ylen), (nstart, nlen) = _CONST[yes], _CONST[no]
    return _CONST_BYTES, np.where(flags, ystart, nstart), np.where(flags, ylen, nlen)


def _int_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pickle opcodes of ints in [0, 2**31): their bytes and each one's end offset."""
    values = values.astype(np.int64, copy=False)
    short = values < 256
    medium = ~short & (values < 65536)
    wide = ~short & ~medium
    widths = np.where(short, 2, np.where(medium, 3, 5))
    ends = np.cumsum(widths)
    starts = ends - widths
    out = np.empty(int(ends[-1]) if len(ends) else 0, np.uint8)
    out[starts] = np.where(short, 0x4B, np.where(medium, 0x4D, 0x4A))
    out[starts + 1] = values & 0xFF
    high = ~short
    out[starts[high] + 2] = (values[high] >> 8) & 0xFF
    out[starts[wide] + 3] = (values[wide] >> 16) & 0xFF
    out[starts[wide] + 4] = (values[wide] >> 24) & 0xFF
    return out, ends


def _float_codes(values: np.ndarray) -> np.ndarray:
    """Pickle BINFLOAT opcodes (``G`` + 8 bytes big-endian) of values, 9 bytes each."""
    out = np.empty((len(values), 9), np.uint8)
    out[:, 0] = 0x47
    out[:, 1:] = values.astype(">f8").view(np.uint8).reshape(-1, 8)
    return out.reshape(-1)


def _run(codes: tuple[np.ndarray, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> Piece:
    """The codes of values[lo:hi] for each record (empty where lo == hi)."""
    data, ends = codes
    starts = np.concatenate(([0], ends))
    return data, starts[lo], starts[hi] - starts[lo]


def _fixed(data: np.ndarray, width: int, lo: np.ndarray, hi: np.ndarray) -> Piece:
    """Items lo..hi of the fixed-width items in ``data``, for each record."""
    return data, lo * width, (hi - lo) * width


def _each(data: np.ndarray, width: int) -> Piece:
    """One fixed-width item of ``data`` per record, in order."""
    return data, np.arange(0, len(data), width), width


def _each_int(values: np.ndarray) -> Piece:
    """The pickled int of ``values`` per record, in order."""
    data, ends = _int_codes(values)
    return data, ends - np.diff(ends, prepend=0), np.diff(ends, prepend=0)


def _assemble(count: int, pieces: Sequence[Piece]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate, for each of ``count`` records, its part of every piece.

    Returns the bytes of all records one after the other, each record's start and length.
    """
    sources = [piece[0] for piece in pieces]
    bases = np.cumsum([0] + [len(s) for s in sources[:-1]])
    starts = np.empty((count, len(pieces)), np.int64)
    lengths = np.empty((count, len(pieces)), np.int64)
    for column, ((_, start, length), base) in enumerate(zip(pieces, bases, strict=True)):
        starts[:, column] = np.asarray(start) + base
        lengths[:, column] = length
    flat = lengths.reshape(-1)
    out_ends = np.cumsum(flat)
    out_starts = out_ends - flat
    total = int(out_ends[-1]) if len(out_ends) else 0
    gather = np.repeat(starts.reshape(-1) - out_starts, flat) + np.arange(total)
    data = np.concatenate(sources)[gather]
    return data, out_starts.reshape(count, -1)[:, 0], lengths.sum(axis=1)


def _records(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    raw = data.tobytes()
    return [raw[a : a + n] for a, n in zip(starts.tolist(), lengths.tolist(), strict=True)]


def write_postings(
    out: Any, docs: np.ndarray, freqs: np.ndarray, counts: np.ndarray
) -> list[bytes]:
    """Write posting lists of consecutive terms; return each term's term info bytes.

    ``docs`` and ``freqs`` hold the postings of every term one after the other (documents
    ascending within a term), ``counts`` how many each term has. ``out`` is a BufferedOut.
    """
    infos: list[bytes] = []
    ends = np.cumsum(counts)
    first = 0
    while first < len(counts):
        # Whole terms, about CHUNK_POSTINGS postings (at least one term).
        base = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + CHUNK_POSTINGS, "right")))
        lo, hi = base, int(ends[last - 1])
        infos += _write_chunk(out, docs[lo:hi], freqs[lo:hi], counts[first:last])
        first = last
    return infos


def _write_chunk(out: Any, docs: np.ndarray, freqs: np.ndarray, counts: np.ndarray) -> list[bytes]:
    docs = docs.astype(np.int64, copy=False)
    freqs = freqs.astype(np.int64, copy=False)
    counts = counts.astype(np.int64, copy=False)
    ends = np.cumsum(counts)
    starts = ends - counts
    # Every term split in blocks; inline terms are one block of their own.
    nblocks = (counts + BLOCK_LIMIT - 1) // BLOCK_LIMIT
    block_term = np.repeat(np.arange(len(counts)), nblocks)
    first_block = np.cumsum(nblocks) - nblocks
    block_lo = starts[block_term] + BLOCK_LIMIT * (
        np.arange(len(block_term)) - first_block[block_term]
    )
    block_hi = np.minimum(block_lo + BLOCK_LIMIT, ends[block_term])
    block_max = np.maximum.reduceat(freqs, block_lo)  # the blocks tile the chunk
    inline = counts <= INLINE_LIMIT

    head = np.zeros(len(counts), _HEAD)
    head["flags"] = inline
    head["weight"] = np.add.reduceat(freqs, starts)
    head["df"] = counts
    head["minlength"] = MIN_LENGTH_BYTE
    head["maxlength"] = MAX_LENGTH_BYTE
    head["maxweight"] = np.maximum.reduceat(freqs, starts)
    head["minid"] = docs[starts]
    head["maxid"] = docs[ends - 1]

    # Values pickled for the ids: whole ids inline and at block starts, deltas elsewhere.
    values = np.diff(docs, prepend=0)
    values[block_lo] = docs[block_lo]
    in_inline = np.repeat(inline, counts)
    values[in_inline] = docs[in_inline]
    id_codes = _int_codes(values)

    infos = np.empty(len(counts), object)
    terms = np.flatnonzero(inline)
    if len(terms):
        lo, hi = starts[terms], ends[terms]
        data, rec_starts, rec_lengths = _assemble(
            len(terms),
            [
                _each(head[terms].view(np.uint8), _HEAD.itemsize),
                _const("head"),
                _run(id_codes, lo, hi),
                _const("next"),
                _fixed(_float_codes(freqs), 9, lo, hi),
                _const("inline_tail"),
            ],
        )
        infos[terms] = _records(data, rec_starts, rec_lengths)
    blocks = np.flatnonzero(~inline[block_term])
    if len(blocks):
        terms = block_term[blocks]
        lo, hi = block_lo[blocks], block_hi[blocks]
        firsts = lo == starts[terms]
        offsets, lengths = _write_blocks(
            out,
            docs,
            freqs,
            id_codes,
            (lo, hi, block_max[blocks]),
            (firsts, hi == ends[terms]),
            counts[terms] >= COMPRESS_MIN,
        )
        terms = terms[firsts]
        pointers = np.zeros(len(terms), _HEAD_POINTER)
        for name in _HEAD_FIELDS:
            pointers[name] = head[name][terms]
        pointers["offset"] = offsets
        pointers["length"] = lengths
        raw, size = pointers.tobytes(), _HEAD_POINTER.itemsize
        infos[terms] = [raw[a : a + size] for a in range(0, len(raw), size)]
    return infos.tolist()


def _write_blocks(
    out: Any,
    docs: np.ndarray,
    freqs: np.ndarray,
    id_codes: tuple[np.ndarray, np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
    ends: tuple[np.ndarray, np.ndarray],
    compressed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Write posting blocks [lo, hi) of terms, with their largest frequency, to the postings.

    ``ends`` tells which blocks are the first and the last of their term; ``compressed``
    which blocks' terms compress their blocks. Returns, for each term (at its first block),
    the offset and length of its postings.
    """
    lo, hi, block_max = bounds
    firsts, lasts = ends
    weighted = block_max > 1
    data, data_starts, data_lengths = _assemble(
        len(lo),
        [
            _const("head"),
            _run(id_codes, lo, hi),
            _const("tuple"),
            _chosen(weighted, "open", "none"),
            _run(_int_codes(freqs), lo, np.where(weighted, hi, lo)),
            _chosen(weighted, "tuple", "empty"),
            _const("tail"),
        ],
    )
    info, info_starts, info_lengths = _assemble(
        len(lo),
        [
            _const("head"),
            _each_int(hi - lo),
            _each_int(docs[hi - 1]),
            _each(_float_codes(block_max), 9),
            _chosen(compressed, "comp1", "comp0"),
            _const("info_tail"),
        ],
    )
    offsets = np.zeros(len(lo), np.int64)
    term_ends = np.zeros(len(lo), np.int64)
    # Terms that do not compress have one block: written all at once.
    plain = np.flatnonzero(~compressed)
    if len(plain):
        block_lengths = info_lengths[plain] + data_lengths[plain]
        posts, rec_starts, rec_lengths = _assemble(
            len(plain),
            [
                _const("magic"),
                _each(np.asarray(-block_lengths, ">i4").view(np.uint8), 4),
                (info, info_starts[plain], info_lengths[plain]),
                (data, data_starts[plain], data_lengths[plain]),
            ],
        )
        offsets[plain] = out.offset + rec_starts
        term_ends[plain] = offsets[plain] + rec_lengths
        out.write(posts.tobytes())
    # Compressed blocks: one zlib call each.
    packed = np.flatnonzero(compressed)
    if len(packed):
        info_raw, data_raw = info.tobytes(), data.tobytes()
        parts: list[bytes] = []
        offset = out.offset
        for index, a, n, b, m, first, last in zip(
            packed.tolist(),
            info_starts[packed].tolist(),
            info_lengths[packed].tolist(),
            data_starts[packed].tolist(),
            data_lengths[packed].tolist(),
            firsts[packed].tolist(),
            lasts[packed].tolist(),
            strict=True,
        ):
            if first:
                offsets[index] = offset
                parts.append(WHOOSH3_HEADER_MAGIC)
                offset += 4
            block = zlib.compress(data_raw[b : b + m], 1)
            length = n + len(block)
            parts += (_INT.pack(-length if last else length), info_raw[a : a + n], block)
            offset += 4 + length
            term_ends[index] = offset
        out.write(b"".join(parts))
        # Each term ends where its last block does.
        term_ends[packed[firsts[packed]]] = term_ends[packed[lasts[packed]]]
    return offsets[firsts], term_ends[firsts] - offsets[firsts]
