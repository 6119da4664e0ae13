"""Build a legacy export of N documents from the shared corpus, for import benchmarks.

    python bench/legacy_make_export.py --docs 100000 --out /tmp/legacy-bench/export-100k --zip

Documents are replicas of the corpus (cycled) with their own legacy ids and varied metadata
(direction, dates, urgency, status, arrival numbers); about 70% carry the body text. A share
of documents (20% by default) gets a real PDF attachment made with fpdf2 + DejaVu from a
corpus text; PDFs come from a pool that is generated once and cached (hard links in a folder
export), so 100k documents build in about a minute; ``--zip`` also zips the folder.
Each document gets 0-3 history rows.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workflows.legacy.text import encode_cp1258

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/corpus/documents.jsonl.gz"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DOC_FIELDS = [
    "legacy_id", "direction", "number", "doc_type", "agency", "signed_date", "received_date",
    "arrival_number", "subject", "signer", "recipients", "urgency", "secrecy", "deadline",
    "status_text", "body_text",
]  # fmt: skip
ATT_FIELDS = ["legacy_id", "file", "name", "size", "sha256"]
HIST_FIELDS = ["legacy_id", "time", "actor", "unit", "action", "note"]
PEOPLE = ["Trần Thị Bình", "Võ Minh Đức", "Lê Hoàng Cường", "Nguyễn Thu Hà", "Phạm Văn Nam"]
UNITS = ["Văn phòng Sở", "Phòng Kế hoạch - Tài chính", "Phòng Quản lý Công nghiệp", "Thanh tra Sở"]
ACTIONS = ["Tiếp nhận", "Chuyển xử lý", "Cho ý kiến", "Hoàn thành"]
NOTES = ["", "Đã xử lý, lưu hồ sơ.", "Đề nghị phòng KHTC chủ trì, tham mưu.", "Kính chuyển."]
SIGNERS = ["", "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC\nNguyễn Văn An", "GIÁM ĐỐC\nLê Thị Hoa"]


def corpus_docs(path: Path) -> Iterator[dict]:
    """Yield corpus documents forever, cycling through the file."""
    while True:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            for line in stream:
                yield json.loads(line)


def make_pdf(args: tuple[int, str]) -> tuple[int, bytes]:
    """Render one pool PDF (title + beginning of the text) with fpdf2 and DejaVu."""
    from fpdf import FPDF

    index, text = args
    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=FONT)
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(0, 6, text)
    return index, bytes(pdf.output())


def pdf_pool(pool_dir: Path, size: int) -> list[tuple[Path, int, str]]:
    """Return (path, size, sha256) of ``size`` cached PDFs, generating the missing ones."""
    pool_dir.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(size) if not (pool_dir / f"{i:05d}.pdf").exists()]
    if missing:
        started = time.monotonic()
        texts = []
        docs = corpus_docs(CORPUS)
        wanted = set(missing)
        for i in range(max(missing) + 1):
            doc = next(docs)
            if i in wanted:
                texts.append((i, f"{doc['title']}\n\n{doc['text'][:1500]}"))
        with ProcessPoolExecutor() as pool:
            for index, data in pool.map(make_pdf, texts, chunksize=8):
                (pool_dir / f"{index:05d}.pdf").write_bytes(data)
        print(f"pool: made {len(missing)} PDFs in {time.monotonic() - started:.1f}s",
              file=sys.stderr)  # fmt: skip
    result = []
    for i in range(size):
        path = pool_dir / f"{i:05d}.pdf"
        data = path.read_bytes()
        result.append((path, len(data), hashlib.sha256(data).hexdigest()))
    return result


class FolderOut:
    """Write an export as a folder; attachments are hard links to the pool."""

    def __init__(self, root: Path) -> None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        self.root = root

    def open_binary(self, name: str) -> IO[bytes]:
        return open(self.root / name, "wb")

    def add_file(self, name: str, source: Path) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def zip_folder(folder: Path, target: Path) -> None:
    """Zip an export folder member by member (text deflated, PDFs stored as they are)."""
    with zipfile.ZipFile(target, "w", allowZip64=True) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stored = path.suffix.lower() == ".pdf"
                zf.write(path, path.relative_to(folder).as_posix(),
                         compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                         compresslevel=None if stored else 1)  # fmt: skip


class TextSink:
    """A text stream over a binary one, in UTF-8, UTF-8 with BOM or Windows-1258."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self.raw = io.BufferedWriter(raw, 1 << 20)  # type: ignore[arg-type]
        self.encode = encode_cp1258 if encoding == "cp1258" else (lambda text: text.encode("utf-8"))
        if encoding == "utf-8-sig":
            self.raw.write(b"\xef\xbb\xbf")

    def write(self, text: str) -> int:
        return self.raw.write(self.encode(text))

    def __enter__(self) -> TextSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def open_text(out: FolderOut, name: str, encoding: str) -> TextSink:
    """Open an export member for writing text in ``encoding``."""
    return TextSink(out.open_binary(name), encoding)


def fmt_date(day: date, rng: random.Random) -> str:
    """Format a date the way exports do: mostly dd/mm/yyyy, sometimes d/m/yyyy."""
    return f"{day.day}/{day.month}/{day.year}" if rng.random() < 0.1 else day.strftime("%d/%m/%Y")


def document(index: int, corpus: dict, rng: random.Random) -> dict:
    """Make one export document from a corpus document."""
    direction = rng.choices(["den", "di", "noi_bo"], [6, 3, 1])[0]
    try:
        signed = date.fromisoformat(corpus.get("date") or "")
    except ValueError:
        signed = date(2015, 1, 1) + timedelta(days=rng.randrange(3000))
    signed += timedelta(days=rng.randrange(-20, 20))
    received = signed + timedelta(days=rng.randrange(0, 5))
    has_body = rng.random() < 0.7
    return {
        "legacy_id": f"{500000 + index}-VBĐT",
        "direction": direction,
        "number": corpus.get("number") or "",
        "doc_type": corpus.get("type") or "",
        "agency": corpus.get("agency") or "",
        "signed_date": fmt_date(signed, rng),
        "received_date": fmt_date(received, rng) if direction == "den" else "",
        "arrival_number": str(rng.randrange(1, 9999)) if direction == "den" else "",
        "subject": corpus.get("title") or "",
        "signer": rng.choice(SIGNERS),
        "recipients": "Như trên; Lưu: VT",
        "urgency": rng.choices(["Thường", "Khẩn", "Thượng khẩn", "Hỏa tốc"], [80, 12, 3, 5])[0],
        "secrecy": rng.choices(["Thường", "Mật"], [98, 2])[0],
        "deadline": fmt_date(received + timedelta(days=10), rng) if rng.random() < 0.3 else "",
        "status_text": rng.choice(["Lưu", "Đã hoàn thành", "Đang xử lý"]),
        "body_text": (corpus.get("text") or "") if has_body else "",
    }


def history(doc: dict, rng: random.Random) -> list[dict]:
    """Make 0-3 processing events for a document."""
    start = datetime(2019, 1, 1) + timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
    rows = []
    for step in range(rng.choice([0, 1, 2, 2, 3])):
        moment = start + timedelta(hours=step * rng.randrange(1, 200))
        rows.append({
            "legacy_id": doc["legacy_id"], "time": moment.strftime("%d/%m/%Y %H:%M"),
            "actor": rng.choice(PEOPLE), "unit": rng.choice(UNITS),
            "action": ACTIONS[min(step, 3)], "note": rng.choice(NOTES),
        })  # fmt: skip
    return rows


def build(args: argparse.Namespace) -> dict:
    """Write the export and return what was written."""
    rng = random.Random(args.seed)
    pool = pdf_pool(args.pool_dir, args.pdf_pool) if args.pdf_share > 0 else []
    out = FolderOut(args.out)
    counts = {"documents": 0, "attachments": 0, "history": 0}
    doc_name = "documents.jsonl" if args.format == "jsonl" else "documents.csv"
    with contextlib.ExitStack() as stack:
        docs_out = stack.enter_context(
            open_text(out, doc_name, "utf-8" if args.format == "jsonl" else args.encoding)
        )
        att_out = stack.enter_context(open_text(out, "attachments.csv", "utf-8"))
        hist_out = stack.enter_context(open_text(out, "history.csv", "utf-8-sig"))
        doc_csv = csv.DictWriter(docs_out, DOC_FIELDS, delimiter=args.delimiter)
        att_csv = csv.DictWriter(att_out, ATT_FIELDS)
        hist_csv = csv.DictWriter(hist_out, HIST_FIELDS)
        if args.format == "csv":
            doc_csv.writeheader()
        att_csv.writeheader()
        hist_csv.writeheader()
        corpus = corpus_docs(CORPUS)
        for index in range(args.docs):
            doc = document(index, next(corpus), rng)
            if args.format == "jsonl":
                docs_out.write(json.dumps(doc, ensure_ascii=False) + "\n")
            else:
                doc_csv.writerow(doc)
            counts["documents"] += 1
            if pool and rng.random() < args.pdf_share:
                path, size, digest = pool[rng.randrange(len(pool))]
                member = f"files/{index // 1000:04d}/{doc['legacy_id']}.pdf"
                out.add_file(member, path)
                name = f"{doc['doc_type']} {doc['number'].replace('/', '_')}.pdf".strip()
                att_csv.writerow({"legacy_id": doc["legacy_id"], "file": member, "name": name,
                                  "size": size, "sha256": digest})  # fmt: skip
                counts["attachments"] += 1
            for row in history(doc, rng):
                hist_csv.writerow(row)
                counts["history"] += 1
    manifest = {
        "system": "VNPT iOffice (bench)", "organization": "Sở Công Thương",
        "exported_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "format_version": 1, "counts": counts,
    }  # fmt: skip
    with open_text(out, "manifest.json", "utf-8") as stream:
        json.dump(manifest, stream, ensure_ascii=False, indent=1)
    if args.zip:
        zip_folder(args.out, args.out.with_suffix(".zip"))
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/legacy-bench/export-10k"))
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip of the folder")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--encoding", default="utf-8", help="documents.csv encoding")
    parser.add_argument("--delimiter", default=",", help="documents.csv separator")
    parser.add_argument("--pdf-share", type=float, default=0.2)
    parser.add_argument("--pdf-pool", type=int, default=200)
    parser.add_argument("--pool-dir", type=Path, default=Path("/tmp/legacy-bench/pdf-pool"))
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    counts = build(args)
    print(json.dumps({"path": str(args.out), "zip": args.zip, **counts,
                      "seconds": round(time.monotonic() - started, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
