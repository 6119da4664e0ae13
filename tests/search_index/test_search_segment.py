"""The fast segment builder and merge write what Whoosh's own writer would write."""

from __future__ import annotations

import io
import itertools
import pickle
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.filedb.filestore import FileStorage
from whoosh.query import Term

from search_index import blocks, document, writer
from search_index.blocks import BLOCK_LIMIT, COMPRESS_MIN, INLINE_LIMIT
from search_index.schema import build_schema
from search_index.segment import SegmentBuilder

LONG = " ".join(f"điều {i} quy định về hồ sơ lưu trữ" for i in range(200))


def _records(record: Callable[..., Any]) -> list:
    shared = "Công văn gửi các đơn vị về việc triển khai chữ ký số"
    records = [
        record(f"r{i}", "Thông báo triển khai", shared, unit_ids=["u1", "u2"])
        for i in range(3)  # a run of identical texts
    ]
    records.append(record("solo", "Quyết định phê duyệt đề án", LONG, signer=""))
    records += [record(f"many{i}", f"Hồ sơ số {i}", "hồ sơ lưu trữ") for i in range(700)]
    return records


def _standard_index(path: Path, records: list) -> None:
    """Index prepared documents through Whoosh's own SegmentWriter.add_document."""
    ix = writer.create(path)
    w = ix.writer()
    for record in records:
        prepared = document.prepare(record)
        fields = {**prepared.terms, **prepared.tags, **prepared.columns}
        fields.update({f"_stored_{k}": v for k, v in prepared.stored.items() if k in fields})
        w.add_document(**fields)
    w.commit()


def _postings(path: Path) -> dict:
    ix = FileStorage(str(path)).open_index("MAIN")
    with ix.reader() as reader:
        result = {}
        for fieldname, text in reader.all_terms():
            matcher = reader.postings(fieldname, text)
            items = []
            while matcher.is_active():
                items.append((matcher.id(), matcher.weight()))
                matcher.next()
            result[fieldname, text] = items
        return result


def test_builder_writes_the_postings_of_whooshs_writer(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    records = _records(record)
    writer.index_documents(tmp_path / "fast", records)
    _standard_index(tmp_path / "std", records)
    fast, std = _postings(tmp_path / "fast"), _postings(tmp_path / "std")
    assert fast.keys() == std.keys()
    assert fast == std
    # The lists cover inline, one-block and multi-block layouts.
    sizes = {len(v) for v in fast.values()}
    assert min(sizes) <= INLINE_LIMIT < BLOCK_LIMIT < max(sizes)


def test_whoosh_searches_and_deletes_in_built_segments(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    writer.index_documents(path, _records(record))
    ix = writer.open_index(path)
    with ix.searcher() as searcher:
        hits = searcher.search(Term("title_f", "phe_duyet"))
        assert [h["id"] for h in hits] == ["solo"]
    assert writer.delete_documents(path, ["solo", "r1"]) == 2
    assert "solo" not in writer.indexed_versions(path)
    assert len(writer.indexed_versions(path)) == len(_records(record)) - 2


def test_merge_keeps_postings_and_drops_deleted_documents(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    path = tmp_path / "ix"
    records = _records(record)
    for start in range(0, 40, 4):
        writer.index_documents(path, records[start : start + 4])
    writer.delete_documents(path, ["r0", "many5"])
    before = _postings(path)  # Whoosh hides deleted documents from its lists
    assert writer.open_index(path).doc_count_all() == 40
    assert writer.optimize(path) == 1
    assert writer.open_index(path).doc_count_all() == 38
    after = _postings(path)
    ids = writer.indexed_versions(path)
    assert len(ids) == 38 and "r0" not in ids and "many5" not in ids
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items() if v}
    assert after["title_f", b"phe_duyet"] == [(_docnum(path, "solo"), 1.0)]


def _docnum(path: Path, doc_id: str) -> int:
    ix = writer.open_index(path)
    with ix.searcher() as searcher:
        return next(iter(searcher.document_numbers(id=doc_id)))


def test_builder_can_be_cancelled(tmp_path: Path, record: Callable[..., Any]) -> None:
    ix = writer.create(tmp_path)
    builder = SegmentBuilder(ix.storage, "MAIN", build_schema())
    builder.add(document.prepare(record("x", "tiêu đề"), builder.terms))
    builder.cancel()
    assert not [n for n in ix.storage.list() if builder.segment.segid in n]


class _Out:
    """A BufferedOut stand-in that keeps everything in memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.offset += len(data)


def _decode(out: _Out, info: bytes) -> tuple[bytes, list]:
    """Return a term info's header and its blocks' unpickled infos and data (as Whoosh reads)."""
    head = info[: W3TermInfo._struct.size]
    if info[0]:  # postings inlined in the term info
        ids, weights, _ = pickle.loads(info[len(head) :])
        return head, [tuple(ids), tuple(map(int, weights))]
    offset, length = struct.unpack_from("!qi", info, len(head))
    data = bytes(out.data[offset : offset + length])
    assert data[:4] == WHOOSH3_HEADER_MAGIC
    pos, blocks = 4, []
    while True:
        blocklen = struct.unpack_from("!i", data, pos)[0]
        stream = io.BytesIO(data[pos + 4 : pos + 4 + abs(blocklen)])
        block_info = pickle.load(stream)
        block = stream.read()
        blocks.append(
            (block_info, pickle.loads(zlib.decompress(block) if block_info[3] else block))
        )
        if blocklen < 0:
            assert pos + 4 + abs(blocklen) == length
            return head, blocks
        pos += 4 + blocklen


def _expected(ids: list[int], freqs: list[int]) -> tuple[bytes, list]:
    """What ``_decode`` must read back for one posting list: the W3 format, spelled out."""
    inline = len(ids) <= INLINE_LIMIT
    head = W3TermInfo._struct.pack(
        inline, sum(freqs), len(ids), 0, 255, max(freqs), ids[0], ids[-1]
    )
    if inline:
        return head, [tuple(ids), tuple(freqs)]
    compressed = int(len(ids) >= COMPRESS_MIN)
    found = []
    for lo in range(0, len(ids), BLOCK_LIMIT):
        block, weights = ids[lo : lo + BLOCK_LIMIT], freqs[lo : lo + BLOCK_LIMIT]
        deltas = (block[0], *(b - a for a, b in itertools.pairwise(block)))
        info = (len(block), block[-1], float(max(weights)), compressed, 0, 255)
        found.append((info, (deltas, None if max(weights) == 1 else tuple(weights), None)))
    return head, found


def test_bulk_posting_writer_encodes_whoosh_pickles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Posting lists encoded all at once read back as the W3 format has them, term by term."""
    rng = random.Random(3)
    lists = []
    for count in (1, 8, 9, 63, 64, 200, 512, 513, 1500):
        for gap, fmax in ((1, 1), (300, 2), (70_000, 300), (3, 70_000)):
            ids = sorted(rng.sample(range(count * gap + 1), count))
            lists.append((ids, [rng.randint(1, fmax) for _ in ids]))
    rng.shuffle(lists)
    out = _Out()
    monkeypatch.setattr(blocks, "CHUNK_POSTINGS", 2000)  # several chunks
    written = blocks.write_postings(
        out,
        np.array([x for ids, _ in lists for x in ids]),
        np.array([x for _, freqs in lists for x in freqs]),
        np.array([len(ids) for ids, _ in lists]),
    )
    assert len(written) == len(lists)
    for (ids, freqs), info in zip(lists, written, strict=True):
        assert _decode(out, info) == _expected(ids, freqs)


def test_copies_of_a_text_get_consecutive_numbers(
    tmp_path: Path, record: Callable[..., Any]
) -> None:
    """Copies apart in a batch are numbered together, so each run is inverted once."""
    shared = "Công văn gửi các đơn vị về việc triển khai chữ ký số"
    records = [
        record("a1", "Thông báo triển khai", shared),
        record("b", "Quyết định phê duyệt", "đề án chuyển đổi số"),
        record("a2", "Thông báo triển khai", shared),
        record("a3", "Thông báo triển khai", ""),  # a copy without its body stays nearby
    ]
    writer.index_documents(tmp_path, records)
    ix = FileStorage(str(tmp_path)).open_index("MAIN")
    with ix.reader() as reader:
        ids = reader.column_reader("doc_id")
        assert [ids[n] for n in range(reader.doc_count_all())] == ["a1", "a2", "a3", "b"]
    assert _postings(tmp_path)["text_x", "ký".encode()] == [(0, 1.0), (1, 1.0)]


def test_replacing_documents_of_bulk_segments_merges_nothing() -> None:
    """Segments keep their size tier when some of their documents are replaced."""
    from search_index import merge

    class Segment:
        def __init__(self, written: int, live: int) -> None:
            self.written, self.live = written, live

        def doc_count_all(self) -> int:
            return self.written

        def doc_count(self) -> int:
            return self.live

    bulk = [Segment(5000, 3900) for _ in range(merge.MERGE_FACTOR + 2)]
    assert merge.plan(bulk) == []
    small = [Segment(150, 150) for _ in range(merge.MERGE_FACTOR)]
    assert merge.plan([*bulk, *small]) == [small]
