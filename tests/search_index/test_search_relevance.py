"""Relevance smoke test on a slice of the shared corpus (the full measurement is in bench/)."""

from __future__ import annotations

import gzip
import json
import os
import random
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from search_index import searcher, writer

CORPUS = Path(os.environ.get("VANTHU_CORPUS", "/work/shared/data/corpus"))
DOCS = 250
BODY_CHARS = 6000

pytestmark = pytest.mark.skipif(
    not (CORPUS / "documents.jsonl.gz").exists(), reason="shared corpus not available"
)


def _load(name: str) -> list[dict[str, Any]]:
    with open(CORPUS / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Index a deterministic slice: documents named by known-item and question sets."""
    known = _load("known-item-dev.jsonl")
    questions = _load("queries-dev.jsonl")
    rng = random.Random(5)
    wanted = {rid for q in rng.sample(known, 120) for rid in q["relevant_ids"]}
    docs = []
    with gzip.open(CORPUS / "documents.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            if doc["id"] in wanted or len(docs) < DOCS // 3:
                docs.append(doc)
            if len(docs) >= DOCS:
                break
    ids = {d["id"] for d in docs}
    records = [
        {
            "id": d["id"],
            "number": d.get("number"),
            "title": d["title"],
            "body": d["text"][:BODY_CHARS],
            "issuer": d.get("agency") or "",
            "doc_type": d.get("type") or "",
            "issued_on": date.fromisoformat(d["date"]) if d.get("date") else None,
            "principals": ["all"],
            "updated_at": "1",
        }
        for d in docs
    ]
    path = tmp_path_factory.mktemp("relevance") / "ix"
    writer.index_documents(path, records)
    return {
        "path": path,
        "known": [q for q in known if set(q["relevant_ids"]) <= ids],
        "questions": [q for q in questions if set(q["relevant_ids"]) <= ids],
    }


def _recall_at_10(path: Path, queries: list[dict[str, Any]]) -> tuple[float, float]:
    hits = top1 = 0
    for q in queries:
        ids = [h["id"] for h in searcher.search(path, q["query"], principals=["all"])["hits"]]
        hits += any(i in q["relevant_ids"] for i in ids)
        top1 += bool(ids) and ids[0] in q["relevant_ids"]
    return hits / len(queries), top1 / len(queries)


@pytest.mark.parametrize("kind", ["number", "number_ascii"])
def test_numbers_come_first(corpus_slice: dict[str, Any], kind: str) -> None:
    queries = [q for q in corpus_slice["known"] if q["kind"] == kind]
    assert len(queries) >= 30
    assert _recall_at_10(corpus_slice["path"], queries)[1] >= 0.99


@pytest.mark.parametrize("kind", ["title", "title_ascii", "title_nfd"])
def test_title_runs_are_found(corpus_slice: dict[str, Any], kind: str) -> None:
    queries = [q for q in corpus_slice["known"] if q["kind"] == kind]
    if kind == "title_nfd":
        assert any(unicodedata.normalize("NFC", q["query"]) != q["query"] for q in queries)
    assert len(queries) >= 30
    assert _recall_at_10(corpus_slice["path"], queries)[0] >= 0.95


def test_questions_find_their_documents(corpus_slice: dict[str, Any]) -> None:
    queries = corpus_slice["questions"][:60]
    assert len(queries) >= 20
    assert _recall_at_10(corpus_slice["path"], queries)[0] >= 0.8
