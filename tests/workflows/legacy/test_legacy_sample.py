"""Read the shared 300-document sample export: every count reconciles."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

from workflows.legacy import (
    DuplicateTracker,
    estimate_rows,
    inspect_attachment,
    open_export,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)

# shared/ sits beside the repository (as in CI); the sample is the reference export.
SAMPLE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "legacy-sample"


def test_sample_counts_reconcile_with_the_manifest():
    with open_export(SAMPLE) as source:
        manifest = read_manifest(source)
        documents = read_documents(source)
        docs = list(documents)
        attachments = list(read_attachments(source))
        history = list(read_history(source))
        estimated = estimate_rows(source, documents)
    assert manifest.present and manifest.system == "VNPT iOffice"
    assert manifest.counts == {"documents": 300, "attachments": 58, "history": 584}
    assert (len(docs), len(attachments), len(history)) == (300, 58, 584)
    assert estimated == 300 and documents.format == "jsonl" and documents.rows_read == 300
    assert [d.row for d in docs] == list(range(1, 301))
    assert not any(row.problems for row in [*docs, *attachments, *history])

    tracker = DuplicateTracker()
    assert not any(tracker.problem(d.legacy_id, d.row) for d in docs)
    ids = {d.legacy_id for d in docs}
    assert ids == set(json.loads(SAMPLE.with_name("legacy-sample.ids.json").read_text()))
    assert {a.legacy_id for a in attachments} <= ids and {h.legacy_id for h in history} <= ids

    assert Counter(d.direction for d in docs) == {"incoming": 180, "outgoing": 90, "internal": 30}
    assert Counter(d.urgency for d in docs) == {0: 242, 1: 36, 3: 22}
    assert all(h.time is not None and h.time.utcoffset().total_seconds() == 7 * 3600
               for h in history)  # fmt: skip
    first = docs[0]
    assert first.legacy_id == "400000-VBĐT" and first.signed_date == date(2012, 5, 14)
    assert first.recipients == ["Như trên", "Lưu: VT"]


def test_sample_attachments_are_all_sound_and_give_text():
    with open_export(SAMPLE) as source:
        checks = [
            (row, inspect_attachment(source, row.file, expected_size=row.size,
                                     expected_sha256=row.sha256))
            for row in read_attachments(source)
        ]  # fmt: skip
    assert len(checks) == 58
    for row, check in checks:
        assert check.status == "ok", (row.file, check.reasons)
        assert check.sha256 == row.sha256 and check.size == row.size and check.is_pdf
    assert all(check.text for _, check in checks)
    # The text is what the PDF shows: the document's number is in it.
    with open_export(SAMPLE) as source:
        numbers = {d.legacy_id: d.number for d in read_documents(source)}
    hits = sum(numbers[row.legacy_id] in check.text for row, check in checks)
    assert hits >= 50
