"""Speed of the archive search at scale: indexing, short queries, long questions vs FTS5.

usage: python bench/search_speed.py [--docs 100000] [--index DIR] [--reuse] [--procs 2]
                                    [--batch 10000] [--queries 200] [--questions 30]
                                    [--fts5-docs N] [--no-fts5] [--no-fresh]

The corpus (4,972 documents) is replicated to ``--docs`` records with varied metadata (ids,
numbers, legacy ids, issuers, units, states, secrecy, principals, dates); replicas of a
document follow each other, as the same circular received by many units would, so identical
texts are analysed once (document.py keeps a small content cache). ``--no-fresh`` skips the
separate measurement on unique documents (every text analysed), which shows the cost of
analysis itself, and the naive-Whoosh baseline on the same documents.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_corpus import load_documents, load_queries, to_record
from search_relevance import Fts5Reference

from search_index import analysis, searcher, writer
from search_index.document import IndexRecord

UNITS = [f"u{i}" for i in range(30)]
STATES = ["draft", "in_review", "published", "archived"]
DIRECTIONS = ["incoming", "outgoing", "internal"]
EXTRA_ISSUERS = ["UBND tỉnh Hà Giang", "Sở Tài chính", "Văn phòng Chính phủ", "Bộ Nội vụ"]
FACETS = ["direction", "doc_type", "issuer", "year", "unit", "state", "migrated"]


def _number(number: str | None, replica: int) -> str | None:
    if not number or replica == 0:
        return number
    return re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) + 1000 * replica), number)


def replicas(docs: list[dict[str, Any]], total: int, seed: int = 7) -> Iterator[IndexRecord]:
    """Yield ``total`` records: each corpus document repeated with varied metadata."""
    rng = random.Random(seed)
    per_doc = -(-total // len(docs))
    count = 0
    for doc in docs:
        for r in range(per_doc):
            if count >= total:
                return
            units = rng.sample(UNITS, rng.choice((1, 1, 2)))
            secrecy = 0 if rng.random() < 0.9 else rng.choice((1, 2, 3))
            public = rng.random() < 0.6 and secrecy == 0
            issued = date.fromisoformat(doc["date"]) if doc.get("date") else None
            if issued and r:
                issued = issued.replace(year=min(2025, issued.year + r % 5), day=1)
            issuer = doc.get("agency") or ""
            if r % 4 == 3:
                issuer = rng.choice(EXTRA_ISSUERS)
            yield to_record(
                doc,
                id=f"{doc['id']}#{r}",
                legacy_id=f"{400000 + count}-VBĐT",
                number=_number(doc.get("number"), r),
                issuer=issuer,
                issued_on=issued,
                year=issued.year if issued else None,
                direction=DIRECTIONS[r % 3],
                unit_ids=units,
                state=rng.choice(STATES),
                migrated=bool(r % 2),
                secrecy=secrecy,
                principals=["all"] if public else [f"unit:{u}" for u in units] + ["role:van_thu"],
                updated_at=f"2025-01-01T00:00:{r:02d}",
            )
            count += 1


def cpu_times() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def short_queries(docs: list[dict[str, Any]], count: int, seed: int = 11) -> list[str]:
    """Return 2-4 word queries cut from titles; every second one typed without diacritics."""
    rng = random.Random(seed)
    queries = []
    while len(queries) < count:
        words = re.findall(r"[^\W\d_]+", rng.choice(docs)["title"])
        if len(words) < 4:
            continue
        n = rng.randint(2, 4)
        start = rng.randrange(0, len(words) - n + 1)
        text = " ".join(words[start : start + n])
        if len(queries) % 2:
            text = analysis.fold(analysis.normalize(text))
        queries.append(text)
    return queries


def time_queries(path: Path, queries: list[str], **kwargs: Any) -> list[float]:
    latencies = []
    for text in queries:
        start = time.perf_counter()
        searcher.search(path, text, **kwargs)
        latencies.append(1000 * (time.perf_counter() - start))
    return latencies


def naive_whoosh(docs: list[dict[str, Any]]) -> float:
    """Docs/s of plain Whoosh (regex tokens + a pair field via ShingleFilter) on ``docs``."""
    from whoosh import fields, index
    from whoosh.analysis import LowercaseFilter, RegexTokenizer, ShingleFilter

    words = RegexTokenizer(r"\w+") | LowercaseFilter()
    pairs = RegexTokenizer(r"\w+") | LowercaseFilter() | ShingleFilter(2, "_")
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        title=fields.TEXT(analyzer=words, stored=True),
        body=fields.TEXT(analyzer=words),
        pairs=fields.TEXT(analyzer=pairs),
    )
    tmp = tempfile.mkdtemp(prefix="naive-whoosh-")
    try:
        ix = index.create_in(tmp, schema)
        start = time.perf_counter()
        with ix.writer(limitmb=256) as w:
            for d in docs:
                w.add_document(
                    id=d["id"],
                    title=d["title"],
                    body=d["text"],
                    pairs=d["title"] + "\n" + d["text"],
                )
        return len(docs) / (time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--index", help="index directory (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--fts5-docs", type=int, default=0, help="default: same as --docs")
    parser.add_argument("--no-fts5", action="store_true")
    parser.add_argument("--no-fresh", action="store_true")
    parser.add_argument("--optimize", action="store_true", help="merge into one segment first")
    args = parser.parse_args()

    docs = load_documents()
    path = Path(args.index or tempfile.mkdtemp(prefix="search-speed-"))
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}", flush=True)

    if not args.no_fresh:
        fresh = docs[:1000]
        tmp = Path(tempfile.mkdtemp(prefix="search-fresh-"))
        chars = sum(len(d["text"]) + len(d["title"]) for d in fresh)
        start, cpu = time.perf_counter(), cpu_times()
        writer.rebuild(
            tmp, (to_record(d) for d in fresh), restart=True, procs=args.procs, batch_size=500
        )
        wall = time.perf_counter() - start
        used = cpu_times() - cpu + writer.STATS["worker_cpu_s"]
        print(
            f"fresh (every text analysed): {len(fresh)} docs, {chars / len(fresh):.0f} chars/doc,"
            f" {len(fresh) / wall:.0f} docs/s wall, {chars / wall / 1e6:.2f} Mchars/s;"
            f" {len(fresh) / used:.0f} docs per cpu-second ({used:.0f} cpu-s)",
            flush=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)
        short = [dict(d, text=d["text"][:2000]) for d in docs[:2000]]
        tmp = Path(tempfile.mkdtemp(prefix="search-short-"))
        start, cpu = time.perf_counter(), cpu_times()
        writer.rebuild(
            tmp, (to_record(d) for d in short), restart=True, procs=args.procs, batch_size=1000
        )
        wall = time.perf_counter() - start
        used = cpu_times() - cpu + writer.STATS["worker_cpu_s"]
        print(
            f"fresh, bodies cut to 2,000 chars: {len(short) / wall:.0f} docs/s wall,"
            f" {len(short) / used:.0f} docs per cpu-second",
            flush=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)
        print(
            f"naive Whoosh (regex + pair field), full texts: {naive_whoosh(docs[:300]):.0f}"
            f" docs/s; bodies cut to 2,000 chars: {naive_whoosh(short[:1000]):.0f} docs/s",
            flush=True,
        )

    if not (args.reuse and writer.index_status(path) == "ok"):
        start, cpu = time.perf_counter(), cpu_times()

        def progress(written: int) -> None:
            elapsed = time.perf_counter() - start
            print(
                f"  indexed {written} docs in {elapsed:.0f}s ({written / elapsed:.0f} docs/s),"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )

        done = writer.rebuild(
            path,
            replicas(docs, args.docs),
            restart=True,
            procs=args.procs,
            batch_size=args.batch,
            progress=progress,
        )
        wall = time.perf_counter() - start
        used = cpu_times() - cpu + writer.STATS["worker_cpu_s"]
        print(
            f"index {done} docs: {wall:.0f}s wall ({done / wall:.0f} docs/s),"
            f" {used:.0f} cpu-s in all processes ({done / used:.0f} docs per cpu-second),"
            f" procs={args.procs}, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if args.optimize:
        start = time.perf_counter()
        writer.optimize(path)
        print(f"optimize (merge all segments): {time.perf_counter() - start:.0f}s", flush=True)
    size = du(path)
    segments = len(list(path.glob("*.trm"))) + len(list(path.glob("*.seg")))
    print(
        f"index size: {size / 1e6:.0f} MB ({size / args.docs / 1024:.1f} KB/doc),"
        f" {segments} segments",
        flush=True,
    )

    public = {"principals": ["all"], "clearance": 0, "facets": FACETS}
    clerk = {"principals": ["unit:u3", "role:van_thu"], "clearance": 1, "facets": FACETS}
    queries = short_queries(docs, args.queries)
    cold = time_queries(path, queries, **public)
    warm = time_queries(path, queries, **public)
    restricted = time_queries(path, queries, **clerk)
    for name, lat in (("cold", cold), ("warm", warm), ("restricted user, warm", restricted)):
        print(
            f"2-4 word queries ({name}): n={len(lat)} p50={statistics.median(lat):.0f}ms"
            f" p95={percentile(lat, 0.95):.0f}ms max={max(lat):.0f}ms",
            flush=True,
        )
    by_date = time_queries(path, queries[:50], sort="date", **public)
    print(
        f"2-4 word queries sorted by date: p50={statistics.median(by_date):.0f}ms"
        f" p95={percentile(by_date, 0.95):.0f}ms",
        flush=True,
    )

    questions = [q["query"] for q in load_queries("queries-dev.jsonl")][:: 1121 // args.questions]
    questions = questions[: args.questions]
    ours = time_queries(path, questions, **public)
    print(
        f"long questions (ours): n={len(ours)} p50={statistics.median(ours):.0f}ms"
        f" p95={percentile(ours, 0.95):.0f}ms",
        flush=True,
    )

    start = time.perf_counter()
    versions = writer.indexed_versions(path)
    print(f"indexed_versions of {len(versions)} docs: {time.perf_counter() - start:.2f}s")
    one = next(replicas(docs[:1], 1))
    one["updated_at"] = "2099-01-01T00:00:00"
    start = time.perf_counter()
    writer.index_documents(path, [one])
    print(f"update one document: {1000 * (time.perf_counter() - start):.0f}ms", flush=True)

    if not args.no_fts5:
        n = args.fts5_docs or args.docs
        fts_start = time.perf_counter()

        def fts_docs() -> Iterator[dict[str, Any]]:
            for count, r in enumerate(replicas(docs, n), start=1):
                yield {"id": r["id"], "title": r["title"], "text": r["body"]}
                if count % 10_000 == 0:
                    print(
                        f"  fts5: {count} docs in {time.perf_counter() - fts_start:.0f}s,"
                        f" load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )

        fts_dir = tempfile.mkdtemp(prefix="fts5-")
        fts = Fts5Reference(fts_docs(), db_path=str(Path(fts_dir) / "fts5.db"))  # type: ignore[arg-type]
        print(f"fts5 reference: {n} docs indexed in {fts.index_s:.0f}s", flush=True)
        lat = []
        for text in questions:
            start = time.perf_counter()
            fts.run(text)
            lat.append(1000 * (time.perf_counter() - start))
        print(
            f"long questions (FTS5 reference): n={len(lat)} p50={statistics.median(lat):.0f}ms"
            f" p95={percentile(lat, 0.95):.0f}ms",
            flush=True,
        )
        fts.db.close()
        shutil.rmtree(fts_dir, ignore_errors=True)
    if not args.index:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
