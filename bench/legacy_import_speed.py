"""Measure the legacy importer end to end: documents/s and memory, 10k and 100k documents.

    python bench/legacy_import_speed.py                  # 10k and 100k, builds the exports
    python bench/legacy_import_speed.py --docs 10000 --stock-mongomock

Exports come from bench/legacy_make_export.py (corpus documents, 20% with a PDF, 0-3 history
rows each) and are built once under --dir. Each size runs in a fresh child process: the app
on mongomock (in-process, like the embedded portal), one batch through all phases
(documents, attachments with GridFS and PDF text, history, and the search hook), timed from
``run_batch`` start to its report. RSS is sampled at every checkpoint; the peak is the
child's high-water mark.

Stock mongomock scans the whole collection for every query and every unique-index check:
imports become quadratic (3,000 inserts under the legacy_id unique index take ~34 s, 2,000
GridFS files ~56 s). The embedded store installs ``models.mongomock_speed``: lookups by key
for ``_id`` queries and unique indexes, what MongoDB's indexes give. A real MongoDB is faster
still (no deep copies, bulk writes in one round trip); ``--stock-mongomock`` shows the
unpatched numbers (use it with small sizes only).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(kind: str = "VmRSS") -> float:
    """Return the current resident set size in MB (``RssFile``: pages of mapped files)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{kind}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Return the process's peak resident set size in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children(pid: int) -> list[int]:
    """Return the child processes of ``pid`` (from each thread's /proc children list)."""
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                found += map(int, children.read().split())
    except OSError:
        pass
    return found


def tree_rss_mb(root: int) -> float:
    """Return the resident set size of ``root`` and all its descendants, in MB.

    Walks the children lists, not every process of /proc: the sampler runs in the measured
    process and must cost it next to nothing.
    """
    tree = [root]
    for pid in tree:  # grows as it goes
        tree += _children(pid)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class TreeRssSampler(threading.Thread):
    """Sample the RSS of this process and its children (index workers) twice a second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))


class PhaseClock:
    """Wall and CPU seconds of each import phase and of the search indexing inside them."""

    def __init__(self) -> None:
        self.current = "setup"
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.index_calls = 0
        self.index_ids = 0
        self.index_write_wall = 0.0
        self.index_worker_cpu = 0.0

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    def wrap_phase(self, owner: Any, name: str, method: str = "run_phase") -> None:
        """Time ``owner.<method>`` as phase ``name``."""
        stock = getattr(owner, method)

        def run_phase(phase_self: Any) -> None:
            self.current = name
            wall, cpu = time.monotonic(), time.process_time()
            try:
                stock(phase_self)
            finally:
                self.add(name, time.monotonic() - wall, time.process_time() - cpu)
                self.current = "finish"

        setattr(owner, method, run_phase)

    def wrap_indexing(self) -> None:
        """Time the importer's last index step and the index workers of every bulk write.

        The background feed indexes during the attachments and history phases: its time in
        this process is part of theirs; its workers' CPU is counted with the others.
        """
        import jobs.search
        import search_index.writer

        stock_hook = jobs.search.index_documents
        stock_close = search_index.writer.BulkWriter.close

        def hook(ids: list[str], *args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.monotonic(), time.process_time()
            try:
                return stock_hook(ids, *args, **kwargs)
            finally:
                spent_wall, spent_cpu = time.monotonic() - wall, time.process_time() - cpu
                self.add("indexing", spent_wall, spent_cpu)
                self.add(self.current, -spent_wall, -spent_cpu)  # not counted twice
                self.index_calls += 1
                self.index_ids += len(ids)

        def close(writer: Any) -> int:
            wall = time.monotonic()
            try:
                return int(stock_close(writer))
            finally:
                self.index_write_wall += time.monotonic() - wall
                self.index_worker_cpu += writer.worker_cpu

        jobs.search.index_documents = hook
        search_index.writer.BulkWriter.close = close  # type: ignore[method-assign,assignment]

    def report(self) -> dict[str, Any]:
        order = ["setup", "documents", "attachments", "history", "index_step", "indexing", "finish"]
        return {
            "wall_seconds": {k: round(self.wall[k], 1) for k in order if k in self.wall},
            "cpu_seconds": {k: round(self.cpu[k], 1) for k in order if k in self.cpu},
            "indexing_calls": self.index_calls,
            "indexing_ids": self.index_ids,
            "indexing_writer_wall_seconds": round(self.index_write_wall, 1),
            "indexing_worker_cpu_seconds": round(self.index_worker_cpu, 1),
        }


class ProgressLine:
    """Print progress to stderr at most every ``every`` seconds (a slow run stays visible)."""

    def __init__(self, label: str, started: float, every: float = 10.0) -> None:
        self.label = label
        self.started = started
        self.every = every
        self.last = 0.0

    def __call__(self, state: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        docs = state["documents"]["done"]
        files = state["files"]["done"]
        print(
            f"[{self.label} {elapsed:7.1f}s] {state['phase']:<11} documents {docs}"
            f" ({docs / elapsed:.0f}/s) files {files} history {state['history']['done']}"
            f" indexed {state.get('indexing', {}).get('done', 0)}"
            f" rows {state['done']}/{state['total']} RSS {rss_mb():.0f} MB"
            f" (files {rss_mb('RssFile'):.0f})"
            f" load {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )


def child(
    export: Path,
    stock: bool,
    trace: bool = False,
    profile: Path | None = None,
    index_procs: int = 1,
    index_chunk: int | None = None,
) -> dict[str, Any]:
    """Import one export into a fresh in-process app; return the measurements."""
    import logging
    import tracemalloc

    from app import TestingConfig, create_app

    config = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    data_dir = tempfile.mkdtemp(prefix="legacy-bench-")  # the search index goes here
    config.update(
        REDIS_URL=None, MONGODB_URI=None, DATA_DIR=data_dir, SEARCH_INDEX_PROCS=index_procs
    )
    app = create_app(config)
    if stock:
        from models import mongomock_speed

        mongomock_speed.restore()  # create_app installed it for the embedded store
    logging.disable(logging.INFO)
    with app.app_context():
        from workflows import legacy_import
        from workflows.legacy import default_mapping
        from workflows.legacy_import_documents import DocumentPhase
        from workflows.legacy_import_files import AttachmentPhase
        from workflows.legacy_import_history import HistoryPhase
        from workflows.legacy_import_index import IndexStep
        from workflows.seed import seed_reference

        clock = PhaseClock()
        clock.wrap_phase(DocumentPhase, "documents")
        clock.wrap_phase(AttachmentPhase, "attachments")
        clock.wrap_phase(HistoryPhase, "history")
        clock.wrap_phase(IndexStep, "index_step", method="run_step")
        clock.wrap_indexing()
        if index_chunk:
            import workflows.legacy_import_index

            workflows.legacy_import_index.INDEX_CHUNK = index_chunk
        seed_reference()
        mapping = default_mapping()
        batch = legacy_import.create_batch(
            export, kind="cli", name=export.name, mapping=mapping, mapping_name=mapping.name
        )
        samples: list[dict[str, Any]] = []
        if trace:
            gc.collect()
            tracemalloc.start()
        started = time.monotonic()
        cpu = time.process_time()
        rss_start = rss_mb()
        line = ProgressLine(export.name, started)

        def progress(state: dict[str, Any]) -> None:
            samples.append({"t": round(time.monotonic() - started, 1), "phase": state["phase"],
                            "rows": state["done"], "rss_mb": round(rss_mb())})  # fmt: skip
            line(state, force=state["phase"] == "done")

        sampler = TreeRssSampler()
        sampler.start()
        profiler = None
        if profile is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        report = legacy_import.run_batch(str(batch.pk), progress=progress)
        seconds = time.monotonic() - started
        cpu_seconds = time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        from jobs.search import current_versions
        from search_index.writer import check
        from workflows.search import index_path

        drift = check(index_path(), current_versions())
        index_mb = sum(f.stat().st_size for f in Path(index_path()).rglob("*") if f.is_file())
        shutil.rmtree(data_dir, ignore_errors=True)
        peak = peak_rss_mb()
        sampler.stopped.set()
        rss_end = rss_mb()
        rss_file_end = rss_mb("RssFile")
        from mongoengine.connection import get_db

        db = get_db()
        fs_bytes = sum(f.get("length", 0) for f in db["fs.files"].find({}, {"length": 1}))
        for name in db.list_collection_names():
            db.drop_collection(name)
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back to the OS
        rss_dropped = rss_mb()
        retained = tracemalloc.get_traced_memory()[0] / 1e6 if trace else None
    docs = report["documents"]["total"]
    phases: dict[str, float] = {}
    for sample in samples:
        phases[sample["phase"]] = sample["t"]
    step = max(1, len(samples) // 10)
    return {
        "export": str(export),
        "mongomock": "stock" if stock else "accelerated (hash _id + unique indexes)",
        "index_procs": index_procs,
        "documents": report["documents"],
        "attachments": report["attachments"],
        "history": report["history"],
        "problems": report["problem_count"],
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        # With SEARCH_INDEX_PROCS > 1, index worker processes do the analysis.
        "cpu_seconds_with_index_workers": round(cpu_seconds + clock.index_worker_cpu, 1),
        "documents_per_second": round(docs / seconds, 1),
        "documents_per_cpu_second": round(docs / cpu_seconds, 1),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "phase_ends_at_seconds": phases,
        "phases": clock.report(),
        "index_drift": {
            "missing": len(drift.missing),
            "stale": len(drift.stale),
            "extra": len(drift.extra),
        },
        "gridfs_mb": round(fs_bytes / 1e6),
        "search_index_mb": round(index_mb / 1e6),
        "rss_mb_start": round(rss_start),
        "rss_mb_samples": [s["rss_mb"] for s in samples[::step]],
        "rss_mb_end": round(rss_end),
        "rss_file_mb_end": round(rss_file_end),  # mapped files (the search index): page cache
        "rss_mb_after_dropping_database": round(rss_dropped),
        "peak_rss_mb": round(peak),
        "peak_rss_mb_with_index_workers": round(max(peak, sampler.peak)),
        # Python memory still allocated after the database is dropped (--trace-memory):
        # what the importer itself kept (slows the run ~2x; speed figures then do not count).
        "retained_mb_after_dropping_database": round(retained, 1) if retained is not None else None,
    }


def ensure_export(directory: Path, docs: int) -> Path:
    """Build the export of ``docs`` documents unless it exists."""
    label = f"{docs // 1000}k" if docs % 1000 == 0 else str(docs)
    out = directory / f"export-{label}"
    if not (out / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "legacy_make_export.py"), "--docs", str(docs),
             "--out", str(out), "--pool-dir", str(directory / "pdf-pool")],
            check=True,
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/legacy-bench"))
    parser.add_argument("--stock-mongomock", action="store_true")
    parser.add_argument("--trace-memory", action="store_true", help="also trace Python memory")
    parser.add_argument("--profile", type=Path, help="cProfile the import into this file")
    parser.add_argument(
        "--index-procs", type=int, default=1, help="SEARCH_INDEX_PROCS: index worker processes"
    )
    parser.add_argument("--index-chunk", type=int, help="documents per index call and process")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.child:
        result = child(
            args.child,
            args.stock_mongomock,
            args.trace_memory,
            args.profile,
            args.index_procs,
            args.index_chunk,
        )
        print(json.dumps(result, ensure_ascii=False))
        return
    results = []
    for docs in args.docs:
        export = ensure_export(args.dir, docs)
        command = [sys.executable, __file__, "--child", str(export)]
        if args.stock_mongomock:
            command.append("--stock-mongomock")
        if args.trace_memory:
            command.append("--trace-memory")
        command += ["--index-procs", str(args.index_procs)]
        if args.index_chunk:
            command += ["--index-chunk", str(args.index_chunk)]
        if args.profile:
            command += ["--profile", str(args.profile.with_suffix(f".{docs}.prof"))]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # stderr passes through: the child prints its progress there.
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps(result, ensure_ascii=False, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
