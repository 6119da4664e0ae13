"""Relevance of the archive search after importing the corpus through the legacy importer.

usage: python bench/search_relevance_import.py [--dir DIR] [--limit-queries N]

What issue 8 asks for, end to end: the 4,972 corpus documents are written as a legacy
export (documents.jsonl, default mapping: subject, number, type, agency, date, body text),
imported by ``workflows.legacy_import`` on the embedded store (which indexes each batch
through ``jobs.search``), and the dev sets are asked through ``workflows.search.search_for``
as the demo records manager (permission filter included). Hits map back to corpus ids by
legacy id. bench/search_relevance.py measures the index alone (and FTS5) on the same sets.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search_corpus import load_documents, load_queries  # noqa: E402
from search_relevance import TARGETS, evaluate  # noqa: E402


def write_export(docs: list[dict[str, Any]], folder: Path) -> dict[str, str]:
    """Write the corpus as a legacy export; return {legacy id: corpus id}."""
    folder.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    with open(folder / "documents.jsonl", "w", encoding="utf-8") as out:
        for n, doc in enumerate(docs, 1):
            legacy_id = f"IO-{n:06d}"
            ids[legacy_id] = doc["id"]
            day = doc.get("date") or ""
            row = {
                "legacy_id": legacy_id,
                "direction": "den",
                "number": doc.get("number") or "",
                "doc_type": doc.get("type") or "",
                "agency": doc.get("agency") or "",
                "signed_date": "/".join(reversed(day.split("-"))) if day else "",
                "subject": doc.get("title") or "",
                "status_text": "Lưu",
                "body_text": doc.get("text") or "",
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    manifest = {
        "system": "VNPT iOffice",
        "organization": "Sở Công Thương",
        "exported_at": "2026-11-21T08:00:00+07:00",
        "format_version": 1,
        "counts": {"documents": len(docs), "attachments": 0, "history": 0},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--limit-queries", type=int, default=0)
    parser.add_argument("--docs", type=int, default=0, help="only the first N documents (smoke)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="relevance-import-"))

    docs = load_documents(args.docs or None)
    legacy_to_corpus = write_export(docs, work / "export")
    from app import TestingConfig, create_app

    config = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    config.update(REDIS_URL=None, MONGODB_URI=None, DATA_DIR=str(work / "data"))
    app = create_app(config)
    logging.disable(logging.INFO)
    with app.app_context():
        from models.user import User
        from workflows import legacy_import
        from workflows.legacy import default_mapping
        from workflows.search import search_for
        from workflows.seed import seed_demo

        seed_demo()
        mapping = default_mapping()
        batch = legacy_import.create_batch(
            work / "export", kind="cli", name="corpus", mapping=mapping, mapping_name=mapping.name
        )
        start = time.perf_counter()
        report = legacy_import.run_batch(str(batch.pk))
        seconds = time.perf_counter() - start
        print(
            f"imported {report['documents']['imported']} of {report['documents']['total']} "
            f"documents with indexing in {seconds:.1f} s "
            f"({report['documents']['imported'] / seconds:.0f} docs/s)",
            flush=True,
        )
        manager = User.objects.get(username="luutru")

        def ours(text: str) -> list[str]:
            hits = search_for(manager, text, limit=10)["hits"]
            return [legacy_to_corpus.get(h.get("legacy_id") or "", "") for h in hits]

        questions = load_queries("queries-dev.jsonl")
        known = load_queries("known-item-dev.jsonl")
        present = set(legacy_to_corpus.values())
        questions = [q for q in questions if present & set(q["relevant_ids"])]
        known = [q for q in known if present & set(q["relevant_ids"])]
        if args.limit_queries:
            questions, known = questions[: args.limit_queries], known[: args.limit_queries]
        sets: dict[str, list[dict[str, Any]]] = defaultdict(list, {"questions": questions})
        for query in known:
            sets[query["kind"]].append(query)
        results = {name: evaluate(ours, queries) for name, queries in sets.items()}

    print(f"{'set':<14}{'n':>6}{'recall@10':>11}{'mrr@10':>8}{'top1':>7}{'p50_ms':>8}{'p95_ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<14}{r['n']:>6}{r['recall@10']:>11.3f}{r['mrr@10']:>8.3f}{r['top1']:>7.3f}"
            f"{r['p50_ms']:>8.0f}{r['p95_ms']:>8.0f}"
        )
    for target, floor in TARGETS.items():
        name, metric = target.split(" ")
        value = results.get(name, {}).get(metric, 0.0)
        print(f"target {target:<24} {value:.3f} (>= {floor}) {'ok' if value >= floor else 'BELOW'}")


if __name__ == "__main__":
    main()
