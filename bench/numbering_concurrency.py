"""1,000 concurrent number requests on one register book: distinct, consecutive, how fast.

    python bench/numbering_concurrency.py [--requests 1000] [--threads 200] [--save]

Runs on the embedded store (mongomock) unless MONGODB_URI points at a real MongoDB (a fresh
database named vanthu_bench_<random> is used and dropped). Every request goes through
workflows.register_book.assign_number: one atomic find_one_and_update($inc) per number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--save", action="store_true", help="also save each document")
    args = parser.parse_args()

    from app import TestingConfig, create_app

    config = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    db_name = f"vanthu_bench_{uuid.uuid4().hex[:8]}"
    config.update(
        MONGODB_URI=os.environ.get("MONGODB_URI") or None,
        MONGODB_DB=db_name,
        REDIS_URL=None,
        DATA_DIR=tempfile.mkdtemp(prefix="vanthu-bench-"),
    )
    app = create_app(config)
    with app.app_context():
        from models.document import Document
        from models.document_type import DocumentType
        from models.organization import Unit
        from models.register_book import RegisterBook, vn_today
        from workflows.register_book import assign_number
        from workflows.seed import seed_demo

        seed_demo()
        book = RegisterBook.objects.get(name="Sổ văn bản đi", year=vn_today().year)
        qd = DocumentType.objects.get(abbreviation="QĐ")
        unit = Unit.objects.get(abbreviation="QLTM")
        per_thread, extra = divmod(args.requests, args.threads)
        latencies: list[float] = []
        numbers: list[int] = []
        notations: set[str] = set()
        errors: list[BaseException] = []
        guard = threading.Lock()
        barrier = threading.Barrier(args.threads)

        def worker(count: int) -> None:
            barrier.wait()
            for _ in range(count):
                start = time.perf_counter()
                try:
                    doc = Document(
                        direction="outgoing", subject="Bench", doc_type=qd, issuer_unit=unit
                    )
                    assign_number(doc, book=book)
                    if args.save:
                        doc.save()
                except BaseException as exc:
                    errors.append(exc)
                    return
                elapsed = time.perf_counter() - start
                with guard:
                    latencies.append(elapsed)
                    numbers.append(doc.number)
                    notations.add(doc.notation)

        threads = [
            threading.Thread(target=worker, args=(per_thread + (1 if i < extra else 0),))
            for i in range(args.threads)
        ]
        wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall

        ok = (
            not errors
            and sorted(numbers) == list(range(1, args.requests + 1))
            and len(notations) == args.requests
        )
        latencies.sort()
        store = "MongoDB" if config["MONGODB_URI"] else "mongomock (embedded)"
        print(
            f"store: {store}; {args.requests} requests from {args.threads} threads"
            + ("; documents saved" if args.save else "")
        )
        print(
            f"distinct: {len(set(numbers))}; consecutive 1..{args.requests}: "
            f"{sorted(numbers) == list(range(1, args.requests + 1))}; errors: {len(errors)}"
        )
        if latencies:
            p50 = statistics.median(latencies) * 1000
            p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
            print(
                f"wall {wall:.2f} s; {len(latencies) / wall:.0f} numbers/s; "
                f"latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
            )
        if config["MONGODB_URI"]:
            from mongoengine.connection import get_connection

            get_connection().drop_database(db_name)
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
