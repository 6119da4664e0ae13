"""Relevance of the archive search on the shared corpus, next to the SQLite FTS5 reference.

usage: python bench/search_relevance.py [--index DIR] [--reuse] [--fts5-sample N] [--no-fts5]

Prints recall@10 and MRR@10 on queries-dev.jsonl, top-1 of number queries (with and without
diacritics) and recall@10 of title runs (with diacritics, ASCII, NFD) from known-item-dev.jsonl,
for our index and for the FTS5 reference (shared/tools/fts5_reference.py logic), same run.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from search_corpus import load_documents, load_queries, records

from search_index import searcher, writer

TARGETS = {
    "questions recall@10": 0.92,
    "questions mrr@10": 0.78,
    "number top1": 0.99,
    "number_ascii top1": 0.99,
    "title recall@10": 0.95,
    "title_ascii recall@10": 0.95,
    "title_nfd recall@10": 0.95,
}


def evaluate(run, queries: list[dict]) -> dict[str, float]:
    """Return recall@10, MRR@10, top-1 and latency percentiles of ``run(query) -> ids``."""
    hit = top1 = rr = 0.0
    latencies = []
    for q in queries:
        start = time.perf_counter()
        ids = run(q["query"])
        latencies.append(time.perf_counter() - start)
        relevant = set(q["relevant_ids"])
        hit += any(i in relevant for i in ids[:10])
        top1 += bool(ids) and ids[0] in relevant
        rr += next((1 / (k + 1) for k, i in enumerate(ids[:10]) if i in relevant), 0.0)
    n = max(1, len(queries))
    latencies.sort()
    return {
        "recall@10": hit / n,
        "mrr@10": rr / n,
        "top1": top1 / n,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
        "n": len(queries),
    }


class Fts5Reference:
    """The FTS5 reference of shared/tools/fts5_reference.py, as a reusable object."""

    def __init__(self, docs: list[dict], db_path: str = ":memory:") -> None:
        self.db = sqlite3.connect(db_path)
        self.db.execute(
            "create virtual table d using fts5(id unindexed, title, body, bi,"
            " tokenize='unicode61 remove_diacritics 0')"
        )
        start = time.perf_counter()
        self.db.executemany(
            "insert into d values (?,?,?,?)",
            (
                (
                    d["id"],
                    " ".join(self.toks(d["title"])),
                    " ".join(self.toks(d["text"])),
                    " ".join(self.pairs(self.toks(d["title"])) + self.pairs(self.toks(d["text"]))),
                )
                for d in docs
            ),
        )
        self.db.commit()
        self.index_s = time.perf_counter() - start

    @staticmethod
    def toks(s: str) -> list[str]:
        return re.findall(r"\w+", unicodedata.normalize("NFC", s.lower()))

    @staticmethod
    def pairs(t: list[str]) -> list[str]:
        return [a + "_" + b for a, b in itertools.pairwise(t)]

    def run(self, text: str) -> list[str]:
        t = self.toks(text)
        terms = [f'"{x}"' for x in t] + [f'bi:"{x}"' for x in self.pairs(t)]
        if not terms:
            return []
        return [
            r[0]
            for r in self.db.execute(
                "select id from d where d match ? order by bm25(d, 2.0, 1.0, 1.0) limit 10",
                (" OR ".join(terms),),
            )
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", help="index directory (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing index")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--no-fts5", action="store_true")
    parser.add_argument("--fts5-sample", type=int, default=0, help="FTS5 on every Nth query")
    parser.add_argument("--limit-queries", type=int, default=0)
    args = parser.parse_args()

    docs = load_documents()
    path = Path(args.index or tempfile.mkdtemp(prefix="search-relevance-"))
    if not (args.reuse and writer.index_status(path) == "ok"):
        start = time.perf_counter()
        writer.rebuild(path, records(docs), restart=True, procs=args.procs)
        print(f"indexed {len(docs)} docs in {time.perf_counter() - start:.1f}s -> {path}")

    questions = load_queries("queries-dev.jsonl")
    known = load_queries("known-item-dev.jsonl")
    if args.limit_queries:
        questions = questions[: args.limit_queries]
        known = known[: args.limit_queries]
    by_kind = defaultdict(list)
    for q in known:
        by_kind[q["kind"]].append(q)

    def ours(text: str) -> list[str]:
        return [h["id"] for h in searcher.search(path, text, principals=["all"])["hits"]]

    results = {"ours": {}, "fts5": {}}
    results["ours"]["questions"] = evaluate(ours, questions)
    for kind, qs in sorted(by_kind.items()):
        results["ours"][kind] = evaluate(ours, qs)

    if not args.no_fts5:
        fts = Fts5Reference(docs)
        step = max(1, args.fts5_sample)
        results["fts5"]["questions"] = evaluate(fts.run, questions[::step])
        for kind, qs in sorted(by_kind.items()):
            results["fts5"][kind] = evaluate(fts.run, qs[::step])
        print(f"fts5 index_s={fts.index_s:.1f}")

    print(
        f"{'set':<14}{'system':<7}{'n':>6}{'recall@10':>11}{'mrr@10':>8}{'top1':>7}"
        f"{'p50_ms':>8}{'p95_ms':>8}"
    )
    for name in ["questions", *sorted(by_kind)]:
        for system in ("ours", "fts5"):
            r = results[system].get(name)
            if r:
                print(
                    f"{name:<14}{system:<7}{r['n']:>6}{r['recall@10']:>11.3f}{r['mrr@10']:>8.3f}"
                    f"{r['top1']:>7.3f}{r['p50_ms']:>8.0f}{r['p95_ms']:>8.0f}"
                )
    ours_r = results["ours"]
    checks = {
        "questions recall@10": ours_r["questions"]["recall@10"],
        "questions mrr@10": ours_r["questions"]["mrr@10"],
        "number top1": ours_r.get("number", {}).get("top1", 0.0),
        "number_ascii top1": ours_r.get("number_ascii", {}).get("top1", 0.0),
        "title recall@10": ours_r.get("title", {}).get("recall@10", 0.0),
        "title_ascii recall@10": ours_r.get("title_ascii", {}).get("recall@10", 0.0),
        "title_nfd recall@10": ours_r.get("title_nfd", {}).get("recall@10", 0.0),
    }
    for name, value in checks.items():
        status = "ok" if value >= TARGETS[name] else "BELOW TARGET"
        print(f"target {name:<24} {value:.3f} (>= {TARGETS[name]}) {status}")
    print(
        "median query ms (ours, questions):",
        round(statistics.median([results["ours"]["questions"]["p50_ms"]]), 1),
    )


if __name__ == "__main__":
    main()
