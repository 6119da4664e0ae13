"""Measure the legacy reader: rows/s per table, attachment checks/s, and memory.

    python bench/legacy_parse_speed.py /tmp/legacy-bench/export-100k [--files text --workers 2]

Parsing is what the importer does per row (read, decode, normalize, convert, classify,
duplicate check); storing is not included. ``--files hash`` streams and hashes every
attachment, ``--files text`` also extracts PDF text with pdftotext (threads: pdftotext runs
as a subprocess, so threads use both cores). RSS is sampled along the way to show it stays
flat; peak RSS is the process high-water mark.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workflows.legacy import (
    DuplicateTracker,
    inspect_attachment,
    load_mapping,
    open_export,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)


def rss_mb() -> float:
    """Return the current resident set size in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Return the process's peak resident set size in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_documents(source, mapping, expected: int) -> dict:
    started, cpu = time.monotonic(), time.process_time()
    tracker = DuplicateTracker()
    counts = {"rows": 0, "rejected": 0, "duplicates": 0, "warnings": 0}
    samples = []
    step = max(1, expected // 10)
    for row in read_documents(source, mapping):
        counts["rows"] += 1
        if row.rejected:
            counts["rejected"] += 1
        elif tracker.problem(row.legacy_id, row.row):
            counts["duplicates"] += 1
        counts["warnings"] += len(row.warnings)
        if counts["rows"] % step == 0:
            samples.append(round(rss_mb()))
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return {**counts, "seconds": round(seconds, 2), "rows_per_s": round(counts["rows"] / seconds),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_s": round(counts["rows"] / cpu),
            "rss_mb_every_10pct": samples}  # fmt: skip


def parse_table(reader) -> dict:
    started, cpu = time.monotonic(), time.process_time()
    rows = rejected = 0
    for row in reader:
        rows += 1
        rejected += row.rejected
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"rows": rows, "rejected": rejected, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds) if seconds else None,
            "rows_per_cpu_s": round(rows / cpu) if cpu else None}  # fmt: skip


def check_files(source, mapping, mode: str, workers: int) -> dict:
    attachments = [a for a in read_attachments(source, mapping) if not a.rejected]
    started, cpu = time.monotonic(), time.process_time()

    def one(row):
        return inspect_attachment(
            source, row.file, expected_size=row.size, expected_sha256=row.sha256,
            files_dir=mapping.files_dir, extract_text=mode == "text",
        )  # fmt: skip

    statuses: dict[str, int] = {}
    total_bytes = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for check in pool.map(one, attachments):
            statuses[check.status] = statuses.get(check.status, 0) + 1
            total_bytes += check.size or 0
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"files": len(attachments), "statuses": statuses, "mb": round(total_bytes / 2**20),
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "files_per_s": round(len(attachments) / seconds),
            "workers": workers, "mode": mode}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--mapping", type=Path)
    parser.add_argument("--files", choices=["none", "hash", "text"], default="none")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    mapping = load_mapping(args.mapping)
    result: dict = {"export": str(args.export), "rss_mb_start": round(rss_mb())}
    with open_export(args.export, mapping.documents.files) as source:
        manifest = read_manifest(source)
        expected = manifest.counts.get("documents", 100000)
        result["documents"] = parse_documents(source, mapping, expected)
        result["attachments"] = parse_table(read_attachments(source, mapping))
        result["history"] = parse_table(read_history(source, mapping))
        if args.files != "none":
            result["files"] = check_files(source, mapping, args.files, args.workers)
    result["peak_rss_mb"] = round(peak_rss_mb())
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
