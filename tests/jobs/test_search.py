"""The search index jobs: what they load, what they mark, what they remove."""

from __future__ import annotations

import datetime as dt

from jobs import search as search_jobs
from models.document import Document, HistoryEntry
from search_index.writer import check, indexed_versions
from workflows.search import index_path, load_documents, record_for


def test_loaded_documents_give_the_records_of_the_model(make_document, users):
    """Bulk indexing reads only the record's fields, raw, and builds the same record."""
    doc = make_document("incoming", "vanthu", issuer="Sở Y tế", subject="Công văn về tiêm chủng")
    doc.update(
        push__history=HistoryEntry(
            at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), actor_name="x", action="legacy"
        ),
        set__legacy_raw={"row": 1, "html": {"body": "<p>nội dung</p>"}},
        set__content="Nội dung chính",
        set__attachment_text="Văn bản đính kèm",
        set__visible_unit_ids=[str(users["vanthu"].unit.pk)],
        set__issued_on=dt.date(2024, 3, 5),
        set__signer_authority="KT.",
        set__signer_title="PHÓ GIÁM ĐỐC",
        set__signer_name="Lê Văn Cường",
        set__migrated=True,
        set__secrecy=1,
        set__notation="12/SYT-NV",
    )
    plain = make_document("outgoing", "vanthu", subject="Tờ trình")
    full = {str(d.pk): record_for(d) for d in Document.objects}
    loaded = load_documents([str(doc.pk), str(plain.pk), "not-an-id"])
    assert {str(d.pk): record_for(d) for d in loaded} == full
    assert full[str(doc.pk)]["issued_on"] == dt.date(2024, 3, 5)
    assert "perm:archive.search" in full[str(doc.pk)]["principals"]
    assert full[str(doc.pk)]["signer"] == "KT. PHÓ GIÁM ĐỐC - Lê Văn Cường"


def test_index_documents_marks_every_version_and_removes_the_gone(make_document):
    docs = [make_document("incoming", "vanthu", subject=f"Báo cáo {i}") for i in range(5)]
    Document.objects(pk=docs[0].pk).update_one(inc__version=2)
    gone = str(docs[4].pk)
    search_jobs.index_documents([str(d.pk) for d in docs])
    docs[4].delete()
    result = search_jobs.index_documents([str(d.pk) for d in docs])
    assert result == {"indexed": 4, "removed": 1}
    assert {str(d.pk): (d.index_status, d.indexed_version) for d in Document.objects} == {
        str(d.pk): ("indexed", d.version + (2 if d is docs[0] else 0)) for d in docs[:4]
    }
    assert gone not in indexed_versions(index_path())
    assert check(index_path(), search_jobs.current_versions()).clean


def test_feed_leaves_documents_changed_after_reading_pending(make_document):
    """A document saved while its segment is built is not marked indexed at the new version."""
    docs = [make_document("incoming", "vanthu", subject=f"Báo cáo quý {i}") for i in range(3)]
    Document.objects(pk__in=[d.pk for d in docs]).update(set__index_status="pending")
    feed = search_jobs.IndexFeed(1, background=True)  # one worker process builds the segment
    feed.add([str(d.pk) for d in docs])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    Document.objects(pk=docs[0].pk).update_one(
        set__attachment_text="Phụ lục mới", set__updated_at=later
    )
    assert feed.close() == 3
    statuses = {str(d.pk): d.index_status for d in Document.objects}
    assert statuses == {
        str(docs[0].pk): "pending",
        str(docs[1].pk): "indexed",
        str(docs[2].pk): "indexed",
    }
    drift = check(index_path(), search_jobs.current_versions())
    assert drift.stale == [str(docs[0].pk)] and not drift.missing
