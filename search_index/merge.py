"""Merge segments into one, fast, and decide which segments to merge.

Whoosh merges by pushing every posting of every segment through its writer again (several
Python calls per posting). Here each term's posting lists are decoded whole, renumbered and
concatenated with C-level helpers, then encoded a chunk of terms at a time by the segment
builder's bulk encoder (``search_index.blocks``), so a merge costs about as much as reading
the postings. Deleted documents are dropped.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator, Sequence
from itertools import compress
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.fields import Schema
from whoosh.filedb.filestore import Storage
from whoosh.reading import SegmentReader
from whoosh.system import pack_ushort
from whoosh.util.numeric import byte_to_length

from search_index import blocks
from search_index.postings import SegmentView, members
from search_index.segment import BufferedOut, TermsWriter, per_document_writer

#: Size tiers (documents written, deleted ones included): a tier holding MERGE_FACTOR
#: segments is merged into one. Segments of 5,000 documents or more (bulk batches, earlier
#: merges) are left alone, even once some of their documents are replaced: re-indexing a
#: fifth of a bulk import must not merge all of it again. Call writer.optimize() to merge
#: everything (e.g. after a rebuild, or nightly).
TIERS = (200, 2_000, 5_000)
MERGE_FACTOR = 8


def plan(segments: Sequence[Any]) -> list[list[Any]]:
    """Return groups of segments to merge (each group becomes one segment)."""
    groups = []
    lower = 0
    for upper in TIERS:
        tier = [s for s in segments if lower <= s.doc_count_all() < upper]
        if len(tier) >= MERGE_FACTOR:
            groups.append(tier)
        lower = upper
    return groups


def _terms(view: SegmentView, index: int) -> Iterator[tuple[tuple[str, bytes], int, bytes]]:
    names = {fieldid: name for name, fieldid in view._fieldmap.items()}
    for key, raw in iter(view._tindex):
        yield (names[int.from_bytes(key[:2], "big")], key[2:]), index, raw


def merge_segments(
    storage: Storage, indexname: str, schema: Schema, segments: Sequence[Any]
) -> W3Segment | None:
    """Write the live documents of ``segments`` as one new segment; None if none are live."""
    views = [SegmentView(SegmentReader(storage, schema, seg)) for seg in segments]
    try:
        return _merge(storage, indexname, schema, views)
    finally:
        for view in views:
            view.reader.close()


def _merge(
    storage: Storage, indexname: str, schema: Schema, views: list[SegmentView]
) -> W3Segment | None:
    codec = W3Codec()
    segment = W3Segment(codec, indexname)
    # Old docnum -> new docnum per segment (live documents keep their order).
    bases: list[int] = []
    maps: list[array | None] = []
    lives: list[bytes] = []
    total = 0
    for view in views:
        bases.append(total)
        lives.append(view.live.to_bytes(view.n, "little"))
        if view.live_count == view.n:
            maps.append(None)
        else:
            old_to_new = array("I", bytes(4 * view.n))
            for new, old in enumerate(members(view.live, view.n), start=total):
                old_to_new[old] = new
            maps.append(old_to_new)
        total += view.live_count
    if not total:
        return None
    _copy_documents(storage, schema, codec, segment, views)
    segment.set_doc_count(total)

    terms = TermsWriter(segment.create_file(storage, W3Codec.TERMS_EXT))
    out = BufferedOut(segment.create_file(storage, W3Codec.POSTS_EXT))
    fieldmap: dict[str, int] = {}
    terms.extras["fieldmap"] = fieldmap
    keys: list[bytes] = []  # the current field's terms
    infos: list[bytes] = []  # and the term infos written so far
    current: tuple[str, bytes] | None = None
    parts: list[tuple[array, array]] = []
    # Postings of the terms not encoded yet, one term after the other.
    todo_ids, todo_freqs, todo_counts = array("I"), array("I"), array("q")

    def encode() -> None:
        nonlocal todo_ids, todo_freqs, todo_counts
        if todo_counts:
            infos.extend(blocks.write_postings(
                out, np.frombuffer(todo_ids, np.uint32), np.frombuffer(todo_freqs, np.uint32),
                np.frombuffer(todo_counts, np.int64),
            ))  # fmt: skip
            # New arrays: the numpy views still hold the old ones' buffers.
            todo_ids, todo_freqs, todo_counts = array("I"), array("I"), array("q")

    def flush() -> None:
        if current is None or not parts:
            return
        name, word = current
        if name not in fieldmap:
            encode()
            terms.add_sorted(keys, infos)
            keys.clear()
            infos.clear()
            fieldmap[name] = len(fieldmap)
        before = len(todo_ids)
        for part_ids, part_freqs in parts:
            todo_ids.extend(part_ids)
            todo_freqs.extend(part_freqs)
        todo_counts.append(len(todo_ids) - before)
        keys.append(pack_ushort(fieldmap[name]) + word)
        if len(todo_ids) >= blocks.CHUNK_POSTINGS:
            encode()

    streams = [_terms(view, i) for i, view in enumerate(views)]
    for key, index, raw in heapq.merge(*streams):
        if key != current:
            flush()
            current = key
            parts = []
        view = views[index]
        docs, freqs = view._decode(raw)
        mapping = maps[index]
        if mapping is None:
            base = bases[index]
            parts.append((array("I", map(base.__add__, docs)) if base else docs, freqs))
            continue
        keep = bytes(map(lives[index].__getitem__, docs))
        if 1 in keep:
            kept = array("I", map(mapping.__getitem__, compress(docs, keep)))
            parts.append((kept, array("I", compress(freqs, keep))))
    flush()
    encode()
    terms.add_sorted(keys, infos)
    out.close()
    terms.close()
    return segment


def _copy_documents(
    storage: Storage, schema: Schema, codec: W3Codec, segment: W3Segment, views: list[SegmentView]
) -> None:
    """Copy stored fields, field lengths and columns of the live documents, in order."""
    perdoc = per_document_writer(codec, storage, segment)
    fields = {name: schema[name] for name in schema.names()}
    scored = [name for name, f in fields.items() if f.scorable]
    column_fields = [name for name, f in fields.items() if f.column_type and not f.indexed]
    docnum = 0
    for view in views:
        reader = view.reader
        lengths = {name: view.length_bytes(name) for name in scored}
        columns = {}
        for name in column_fields:
            if reader.has_column(name):
                columns[name] = reader.column_reader(name)
        for old in members(view.live, view.n):
            perdoc.start_doc(docnum)
            for name, lenbytes in lengths.items():
                if lenbytes[old]:
                    perdoc.add_field(name, fields[name], None, byte_to_length(lenbytes[old]))
            for name, value in reader.stored_fields(old).items():
                if name in fields and value is not None:
                    perdoc.add_field(name, fields[name], value, 0)
            for name, column in columns.items():
                fieldobj = fields[name]
                perdoc.add_column_value(
                    name, fieldobj.column_type, fieldobj.to_column_value(column[old])
                )
            perdoc.finish_doc()
            docnum += 1
    perdoc.close()
