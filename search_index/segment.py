"""Build a Whoosh (W3 codec) segment from analysed documents, fast.

Whoosh's own writer pushes every posting through an external sort and several Python calls
(16 documents/s on the corpus' full texts with a pair field, here). This builder keeps each
field's postings as numpy arrays of term ids (from the build's ``TermTable``), counts and
document numbers, sorts them once by term and document, and has ``search_index.blocks``
encode every posting list of the field at once. Consecutive documents that share the same
analysed text (the same circular filed by many units) are added as one run. The files are
ordinary W3 segments, so Whoosh reads, merges and deletes from them as from any other
segment.
"""

from __future__ import annotations

import operator
import struct
import zlib
from array import array
from collections.abc import Iterable
from itertools import accumulate, chain, repeat
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.fields import Schema
from whoosh.filedb import filetables
from whoosh.filedb.filestore import Storage
from whoosh.system import pack_ushort
from whoosh.util.numlists import GrowableArray

from search_index import blocks, schema
from search_index.document import PreparedDocument
from search_index.terms import TermCounts, TermTable, value_counts

#: zlib level of the stored-fields column (Whoosh's default is 3).
STORED_LEVEL = 0
_LENGTHS = struct.Struct("!ii")
#: Term maps that documents are grouped by before numbering: title, body, attachments (the
#: copies of one text stay together, with or without their body: nearby numbers encode small).
GROUP_FIELDS = tuple(
    name + schema.EXACT_SUFFIX for name in (schema.TITLE, schema.TEXT, schema.ATTACHMENT)
)


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
    """Consecutive documents sharing one term-count map, added together."""

    __slots__ = ("counts", "docs")

    def __init__(self, counts: TermCounts, docnum: int) -> None:
        self.counts = counts
        self.docs = [docnum]


class _Postings:
    """One field's postings as added: runs of documents sharing term counts, and tags."""

    __slots__ = ("runs", "tag_codes", "tag_docs")

    def __init__(self) -> None:
        self.runs: list[tuple[TermCounts, list[int]]] = []
        self.tag_codes: list[int] = []
        self.tag_docs: list[int] = []

    def add_tags(self, codes: Iterable[int], docnum: int) -> None:
        before = len(self.tag_codes)
        self.tag_codes.extend(codes)
        self.tag_docs += [docnum] * (len(self.tag_codes) - before)

    def arrays(self, table: TermTable) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Return the field's terms (sorted) and, per posting, unsorted: term rank, frequency
        and document number.
        """
        counts = list({id(c): c for c, _ in self.runs}.values())  # each distinct map once
        tag_codes = np.array(self.tag_codes, np.int64)
        codes = np.concatenate([*(c.codes for c in counts), tag_codes])
        present, _ = value_counts(codes)
        terms = table.strings(present)
        # Terms sorted as strings: code point order is the UTF-8 byte order of Whoosh keys.
        order = sorted(range(len(terms)), key=terms.__getitem__)
        rank_of = np.empty(len(terms), np.int64)
        rank_of[order] = np.arange(len(terms))
        ranks = rank_of[np.searchsorted(present, codes)]
        bounds = np.cumsum([0, *(len(c.codes) for c in counts)]).tolist()
        ranks_of = {id(c): ranks[bounds[n] : bounds[n + 1]] for n, c in enumerate(counts)}
        rank_parts, freq_parts, docs, sizes = [], [], [], []
        for counted, run in self.runs:
            copies = len(run)
            run_ranks = ranks_of[id(counted)]
            if copies == 1:
                rank_parts.append(run_ranks)
                freq_parts.append(counted.counts)
                docs.append(run[0])
                sizes.append(len(run_ranks))
                continue
            rank_parts.append(np.tile(run_ranks, copies))
            freq_parts.append(np.tile(counted.counts, copies))
            docs += run
            sizes += [len(run_ranks)] * copies
        run_docs = np.repeat(np.array(docs, np.int64), sizes)
        return (
            [terms[n] for n in order],
            np.concatenate([*rank_parts, ranks[bounds[-1] :]]),
            np.concatenate([*freq_parts, np.ones(len(tag_codes), np.int64)]),
            np.concatenate([run_docs, np.array(self.tag_docs, np.int64)]),
        )


class SegmentBuilder:
    """Collect analysed documents and write them as one new segment of an index.

    Documents must be prepared with the builder's ``terms`` table.
    """

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
        self.terms = TermTable()
        self._postings: dict[str, _Postings] = {}
        self._runs: dict[str, _Run] = {}
        self._fields = {name: schema[name] for name in schema.names()}
        # Fields whose shared term maps group documents in add_all (see GROUP_FIELDS).
        self._group_fields = [n for n in GROUP_FIELDS if n in self._fields]

    def __len__(self) -> int:
        return self.doccount

    def _postings_of(self, name: str) -> _Postings:
        postings = self._postings.get(name)
        if postings is None:
            postings = self._postings[name] = _Postings()
        return postings

    def _flush_run(self, name: str) -> None:
        run = self._runs.pop(name, None)
        if run is not None:
            self._postings_of(name).runs.append((run.counts, run.docs))

    def add(self, doc: PreparedDocument) -> None:
        """Add one analysed document."""
        docnum = self.doccount
        perdoc = self.perdoc
        fields = self._fields
        perdoc.start_doc(docnum)
        for name, counts in doc.terms.items():
            if counts.table is not self.terms:
                raise ValueError("document prepared with another term table")
            run = self._runs.get(name)
            if run is not None and run.counts is counts and run.docs[-1] == docnum - 1:
                run.docs.append(docnum)
            else:
                self._flush_run(name)
                self._runs[name] = _Run(counts, docnum)
            perdoc.add_field(name, fields[name], None, doc.lengths.get(name, 0))
        for name in [n for n in self._runs if n not in doc.terms]:
            self._flush_run(name)
        word_ids = self.terms.ids
        for name, values in doc.tags.items():
            if values:
                self._postings_of(name).add_tags(map(word_ids.__getitem__, set(values)), docnum)
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
        is added once.
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
            words, infos = self._write_field(out, self._postings.pop(name))
            terms.add_sorted(list(map(pack_ushort(fieldid).__add__, map(str.encode, words))), infos)
        out.close()
        terms.close()
        if compound and self.segment.should_assemble():
            self.segment.create_compound_file(self.storage)
            self.segment.compound = True
        return self.segment

    def _write_field(self, out: BufferedOut, postings: _Postings) -> tuple[list[str], list[bytes]]:
        """Write one field's posting lists; return its terms (sorted) and their term infos."""
        terms, ranks, freqs, docs = postings.arrays(self.terms)
        if not terms:
            return [], []
        # Postings sorted by (term, document): one in-place sort of packed 64-bit keys.
        freq_bits = int(freqs.max()).bit_length()
        doc_bits = max(1, self.doccount.bit_length())
        if len(terms).bit_length() + doc_bits + freq_bits <= 63:
            keys = (ranks << (doc_bits + freq_bits)) | (docs << freq_bits) | freqs
            keys.sort()
            docs = (keys >> freq_bits) & ((1 << doc_bits) - 1)
            freqs = keys & ((1 << freq_bits) - 1)
        else:
            by_term = np.lexsort((docs, ranks))
            docs, freqs = docs[by_term], freqs[by_term]
        infos = blocks.write_postings(out, docs, freqs, np.bincount(ranks, minlength=len(terms)))
        return terms, infos

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
        """Write Whoosh's 256 hash tables (linear probing, twice as many slots as keys).

        Keys are placed in rounds: each round, every unplaced key tries its next slot and
        the first of those aiming at a free slot takes it. A key passes a slot only when it
        is taken, so lookups, which probe from the hashed slot up to an empty one, find it.
        """
        self._out.flush()
        self.index.array = self._positions
        hashes = np.frombuffer(self._hashes, np.uint64).astype(np.int64)
        buckets = hashes & 255
        numslots = 2 * np.bincount(buckets, minlength=256)
        table_starts = np.cumsum(numslots) - numslots
        table = np.zeros(int(numslots.sum()), [("hash", ">u4"), ("position", ">i8")])
        sizes = numslots[buckets]
        probes = (hashes >> 8) % np.maximum(sizes, 1)
        taken = np.zeros(len(table), bool)
        pending = np.arange(len(hashes))
        while len(pending):
            slots = table_starts[buckets[pending]] + probes[pending]
            free = ~taken[slots]
            _, first = np.unique(slots[free], return_index=True)
            placed = pending[free][first]
            won = slots[free][first]
            taken[won] = True
            table["hash"][won] = hashes[placed]
            table["position"][won] = np.frombuffer(self._positions, np.int64)[placed]
            unplaced = np.ones(len(pending), bool)
            unplaced[np.flatnonzero(free)[first]] = False
            pending = pending[unplaced]
            probes[pending] = (probes[pending] + 1) % sizes[pending]
        start = self.dbfile.tell()
        self.directory.extend(
            zip((start + 12 * table_starts).tolist(), numslots.tolist(), strict=True)
        )
        self.dbfile.write(table.tobytes())
