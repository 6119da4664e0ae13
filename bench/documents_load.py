"""Inbox and document page latency under concurrent clients, on the embedded store.

usage: .venv/bin/python bench/documents_load.py [--documents 10000] [--clients 20]
                                               [--requests 30]
Starts `flask --app app serve` (embedded: mongomock + in-process jobs) with the demo agency
and N bulk documents, logs 20 clients in as different users, and has each load its inbox
and then a document page it may open, repeatedly. Prints p50/p95 per page.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
USERS = [
    "giamdoc",
    "phogiamdoc",
    "vanthu",
    "truongphong",
    "phophong",
    "chuyenvien",
    "tp.khtc",
    "cv.khtc",
    "tp.qlcn",
    "cv.qlcn",
    "chanhthanhtra",
    "chanhvanphong",
    "luutru",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/auth/login", timeout=600).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    session.post(
        f"{base}/auth/login",
        data={"username": username, "password": "VanThu@2026", "csrf_token": token},
        timeout=600,
    )
    return session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "VANTHU_BENCH_DOCUMENTS": str(args.documents)}
    env.pop("MONGODB_URI", None)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/flask"),
            "--app",
            "app",
            "serve",
            "--port",
            str(port),
            "--threads",
            "16",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                requests.get(f"{base}/auth/login", timeout=2)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() - started > 600:
                    sys.exit("server did not start")
                time.sleep(0.5)
        print(f"server ready with {args.documents} documents in {time.monotonic() - started:.1f} s")
        timings: dict[str, list[float]] = {"inbox": [], "document": []}
        lock = threading.Lock()

        def client(i: int) -> None:
            session = login(base, USERS[i % len(USERS)])
            for _ in range(args.requests):
                t0 = time.perf_counter()
                inbox = session.get(f"{base}/documents/?tab=inbox", timeout=600)
                t1 = time.perf_counter()
                ids = re.findall(r'href="/documents/([0-9a-f]{24})"', inbox.text)
                if not ids:
                    listing = session.get(f"{base}/documents/?tab=incoming", timeout=600).text
                    ids = re.findall(r'href="/documents/([0-9a-f]{24})"', listing)
                t2 = time.perf_counter()
                page = session.get(f"{base}/documents/{ids[0]}", timeout=600) if ids else None
                t3 = time.perf_counter()
                with lock:
                    timings["inbox"].append(t1 - t0)
                    if page is not None and page.status_code == 200:
                        timings["document"].append(t3 - t2)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t_start
        for name, values in timings.items():
            values.sort()
            if not values:
                continue
            p95 = values[int(len(values) * 0.95) - 1]
            print(
                f"{name}: n={len(values)} p50={1000 * statistics.median(values):.0f} ms "
                f"p95={1000 * p95:.0f} ms"
            )
        total = sum(len(v) for v in timings.values())
        print(
            f"{args.clients} clients, {total} pages in {elapsed:.1f} s "
            f"({total / elapsed:.1f} pages/s)"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=600)


if __name__ == "__main__":
    main()
