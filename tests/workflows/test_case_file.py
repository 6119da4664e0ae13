"""Case files: lists and their approval, opening, attaching, closing, transfer, freezing."""

import datetime as dt
import io

import pytest

from models.audit import AuditEntry
from models.case_file import CaseFile, CaseFileList
from models.document import Document
from workflows import case_file as cf
from workflows import engine, storage
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed

# Helpers other case-file tests import -------------------------------------------------------


def finished_incoming(make_document, users, notation="12/UBND-KT", **fields):
    """An incoming document handled to the end, with chuyenvien as the lead."""
    doc = make_document(
        "incoming",
        "vanthu",
        issuer=fields.pop("issuer", "UBND tỉnh Đồng Nai"),
        notation=notation,
        issued_on=fields.pop("issued_on", dt.date(2026, 1, 5)),
        arrival_number=fields.pop("arrival_number", 7),
        arrival_at=fields.pop("arrival_at", dt.datetime(2026, 1, 6, 2, tzinfo=dt.UTC)),
        **fields,
    )
    engine.transition(doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)})
    engine.transition(
        doc.pk,
        "assign",
        users["giamdoc"],
        {"assignees": [{"role": "lead", "user": str(users["chuyenvien"].pk)}]},
    )
    return engine.transition(doc.pk, "complete", users["chuyenvien"], {"report": "Đã xử lý xong"})


def migrated_document(units, legacy_id="488397-VBĐT", **fields):
    """A document imported from the legacy system, visible to the QLTM unit."""
    return Document(
        direction=fields.pop("direction", "incoming"),
        subject=fields.pop("subject", "V/v báo cáo tình hình thị trường năm 2025"),
        notation=fields.pop("notation", "35/BC-BCT"),
        issuer=fields.pop("issuer", "Bộ Công Thương"),
        issued_on=fields.pop("issued_on", dt.date(2025, 12, 20)),
        pages=fields.pop("pages", 3),
        migrated=True,
        legacy_id=legacy_id,
        legacy_system="VNPT iOffice",
        state="migrated",
        status_text="Đã hoàn thành",
        visible_unit_ids=[str(units["QLTM"].pk)],
        **fields,
    ).save()


def add_pdf(doc, data, filename="van-ban.pdf"):
    """Store a PDF (kept even when damaged) and make it the document's current revision."""
    stored = storage.store_upload(io.BytesIO(data), filename, keep_damaged=True)
    stored.mime = "application/pdf"  # a damaged "PDF" still claims to be one
    storage.add_revision(doc, stored)
    doc.save()
    return doc


def open_adhoc(user, code="15.QLTM", retention="07.02", title="Hồ sơ kiểm tra thị trường Tết"):
    return cf.open_case_file(user, {"code": code, "title": title, "retention": retention})


def closed_file(user, docs, **kwargs):
    case_file = open_adhoc(user, **kwargs)
    for doc in docs:
        cf.attach_document(user, case_file.pk, doc.pk)
    return cf.close_case_file(user, case_file.pk)


# Opening ------------------------------------------------------------------------------------


def test_open_from_the_approved_list_copies_the_entry(users):
    year_list = CaseFileList.objects.get()
    assert year_list.state == "approved"
    entry = next(e for e in year_list.entries if e.code == "07.QLTM")
    case_file = cf.open_case_file(users["chuyenvien"], list_id=year_list.pk, entry_id=entry.id)
    assert (case_file.code, case_file.title, case_file.year) == (
        "07.QLTM",
        entry.title,
        year_list.year,
    )
    assert case_file.retention.label == "15 năm"
    assert case_file.owner_user.pk == users["chuyenvien"].pk
    assert case_file.source_list.pk == year_list.pk
    with pytest.raises(Conflict, match=r"07\.QLTM năm .* đã được lập"):
        cf.open_case_file(users["chuyenvien"], list_id=year_list.pk, entry_id=entry.id)


def test_an_entry_of_another_unit_cannot_be_opened(users):
    year_list = CaseFileList.objects.get()
    entry = next(e for e in year_list.entries if e.code == "05.KHTC")
    with pytest.raises(Forbidden, match="người hoặc đơn vị khác"):
        cf.open_case_file(users["chuyenvien"], list_id=year_list.pk, entry_id=entry.id)
    # The records manager opens any entry.
    case_file = cf.open_case_file(users["luutru"], list_id=year_list.pk, entry_id=entry.id)
    assert case_file.owner_user.username == "cv.khtc"


def test_open_ad_hoc_checks_the_input(users):
    with pytest.raises(ValidationFailed, match="số, ký hiệu hồ sơ"):
        cf.open_case_file(users["chuyenvien"], {"title": "Không có số"})
    with pytest.raises(ValidationFailed, match="chỉ gồm chữ, số"):
        cf.open_case_file(users["chuyenvien"], {"code": "01 <TCCB>", "title": "x"})
    with pytest.raises(ValidationFailed, match="thời hạn bảo quản"):
        cf.open_case_file(users["chuyenvien"], {"code": "01.X", "title": "x", "retention": "99"})
    assert CaseFile.objects.count() == 0


# Attaching ----------------------------------------------------------------------------------


def test_attach_current_and_migrated_documents_by_reference(make_document, users, units):
    incoming = finished_incoming(make_document, users)
    migrated = migrated_document(units)
    first = open_adhoc(users["chuyenvien"])
    second = open_adhoc(users["chuyenvien"], code="16.QLTM", title="Hồ sơ thứ hai")
    cf.attach_document(users["chuyenvien"], first.pk, incoming.pk)
    cf.attach_document(users["chuyenvien"], first.pk, migrated.pk)
    cf.attach_document(users["chuyenvien"], second.pk, incoming.pk)
    first.reload()
    assert [i.document.pk for i in first.items] == [incoming.pk, migrated.pk]
    assert [c.code for c in CaseFile.objects.holding(incoming.pk).order_by("code")] == [
        "15.QLTM",
        "16.QLTM",
    ]
    assert Document.objects.count() == 2  # nothing copied
    with pytest.raises(Conflict, match="đã có trong hồ sơ"):
        cf.attach_document(users["chuyenvien"], first.pk, incoming.pk)


def test_attaching_a_document_the_user_cannot_see_is_not_found(make_document, users):
    secret_to_me = make_document("outgoing", "cv.khtc", subject="Dự toán ngân sách")
    case_file = open_adhoc(users["chuyenvien"])
    with pytest.raises(NotFound, match="không có quyền xem"):
        cf.attach_document(users["chuyenvien"], case_file.pk, secret_to_me.pk)
    with pytest.raises(NotFound):
        cf.attach_document(users["chuyenvien"], case_file.pk, "not-an-id")
    case_file.reload()
    assert case_file.items == [] and case_file.version == 1


def test_only_owners_and_records_managers_edit_a_file(make_document, users):
    doc = make_document("outgoing", "cv.khtc")
    case_file = open_adhoc(users["chuyenvien"])
    with pytest.raises(NotFound):  # another unit does not even see it
        cf.attach_document(users["cv.khtc"], case_file.pk, doc.pk)
    with pytest.raises(Forbidden, match="không có quyền sửa"):  # a leader may read, not edit
        cf.attach_document(users["giamdoc"], case_file.pk, doc.pk)
    assert cf.get_case_file(users["phophong"], case_file.pk).can_edit(users["phophong"])


# Closing ------------------------------------------------------------------------------------


def test_close_refuses_drafts_and_documents_in_a_workflow(make_document, users, units):
    draft = make_document("outgoing", "chuyenvien", notation="20/SCT-QLTM")
    running = make_document("incoming", "vanthu", issuer="UBND tỉnh", notation="99/UBND-KT")
    engine.transition(running.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)})
    engine.transition(
        running.pk,
        "assign",
        users["giamdoc"],
        {"assignees": [{"role": "lead", "user": str(users["chuyenvien"].pk)}]},
    )
    case_file = open_adhoc(users["chuyenvien"])
    for doc in (draft, running, migrated_document(units)):
        cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    before = CaseFile.objects.get(pk=case_file.pk).version
    with pytest.raises(ValidationFailed) as caught:
        cf.close_case_file(users["chuyenvien"], case_file.pk)
    message = caught.value.message
    assert "Hồ sơ còn dự thảo: «20/SCT-QLTM»" in message
    assert "Văn bản đang trong quy trình xử lý: «99/UBND-KT»" in message
    assert "35/BC-BCT" not in message  # migrated documents have no workflow to finish
    after = CaseFile.objects.get(pk=case_file.pk)
    assert (after.state, after.version, after.closed_at) == ("open", before, None)


def test_close_refuses_duplicates_and_an_empty_file(make_document, users, units):
    case_file = open_adhoc(users["chuyenvien"])
    with pytest.raises(ValidationFailed, match="chưa có văn bản nào"):
        cf.close_case_file(users["chuyenvien"], case_file.pk)
    one = migrated_document(units, legacy_id="1-VBĐT")
    twin = migrated_document(units, legacy_id="2-VBĐT")  # same notation, issuer and date
    cf.attach_document(users["chuyenvien"], case_file.pk, one.pk)
    cf.attach_document(users["chuyenvien"], case_file.pk, twin.pk)
    with pytest.raises(ValidationFailed, match="trùng với một văn bản khác"):
        cf.close_case_file(users["chuyenvien"], case_file.pk)
    cf.detach_document(users["chuyenvien"], case_file.pk, twin.pk)
    assert cf.close_case_file(users["chuyenvien"], case_file.pk).state == "closed"
    assert Document.objects(pk=twin.pk).count() == 1  # detaching never deletes


def test_a_closed_file_refuses_changes_until_reopened(make_document, users, units):
    doc = finished_incoming(make_document, users)
    case_file = closed_file(users["chuyenvien"], [migrated_document(units)])
    with pytest.raises(cf.CaseFileNotOpen, match="Mở lại hồ sơ"):
        cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    reopened = cf.reopen_case_file(users["chuyenvien"], case_file.pk)
    assert reopened.state == "open" and reopened.transfer_due_on is None
    cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    assert cf.close_case_file(users["chuyenvien"], case_file.pk).document_count == 2


# Transfer -----------------------------------------------------------------------------------


def test_transfer_freezes_the_file_through_the_workflow(make_document, users, units):
    doc = finished_incoming(make_document, users)
    case_file = closed_file(users["chuyenvien"], [doc, migrated_document(units)])
    with pytest.raises(Forbidden, match="quản lý lưu trữ"):
        cf.transfer_case_files(users["chuyenvien"], [case_file.pk])
    record = cf.transfer_case_files(users["luutru"], [case_file.pk], "Đủ 2 văn bản")
    assert record.workflow_code == "case_file" and record.state == "transferred"
    assert record.doc_type_name == "Biên bản" and record.closed
    assert record.history[-1].label == "Tiếp nhận nộp lưu"
    assert record.history[-1].detail == {"case_files": ["15.QLTM"]}
    case_file.reload()
    assert case_file.state == "archived" and case_file.frozen
    assert case_file.transferred_by_name == users["luutru"].full_name
    assert case_file.transfer_document.pk == record.pk
    assert AuditEntry.objects(action="case_file.transfer", object_id=str(case_file.pk)).count()

    documents_before = Document.objects.count()
    with pytest.raises(cf.AlreadyTransferred, match="đã được nộp lưu ngày"):
        cf.transfer_case_files(users["luutru"], [case_file.pk])
    assert Document.objects.count() == documents_before  # no second hand-over record
    for attempt in (
        lambda: cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk),
        lambda: cf.detach_document(users["luutru"], case_file.pk, doc.pk),
        lambda: cf.update_case_file(users["chuyenvien"], case_file.pk, {"title": "Mới"}, None),
        lambda: cf.reopen_case_file(users["luutru"], case_file.pk),
        lambda: cf.close_case_file(users["chuyenvien"], case_file.pk),
    ):
        with pytest.raises(cf.FrozenCaseFile, match="chỉ được xem, không sửa được"):
            attempt()
    after = CaseFile.objects.get(pk=case_file.pk)
    assert after.version == case_file.version and len(after.items) == 2


def test_a_failed_transfer_changes_nothing(users, units):
    closed = closed_file(users["chuyenvien"], [migrated_document(units)])
    still_open = open_adhoc(users["chuyenvien"], code="16.QLTM")
    documents_before = Document.objects.count()
    with pytest.raises(Conflict, match=r"16\.QLTM chưa kết thúc"):
        cf.transfer_case_files(users["luutru"], [closed.pk, still_open.pk])
    assert CaseFile.objects.get(pk=closed.pk).state == "closed"
    assert CaseFile.objects.get(pk=closed.pk).transfer_document is None
    assert Document.objects.count() == documents_before


def test_viewing_an_archived_file_is_written_to_the_access_log(users, units):
    case_file = closed_file(users["chuyenvien"], [migrated_document(units)])
    cf.get_case_file(users["luutru"], case_file.pk)
    assert not AuditEntry.objects(action="case_file.view").count()  # not archived yet
    cf.transfer_case_files(users["luutru"], [case_file.pk])
    cf.get_case_file(users["giamdoc"], case_file.pk)
    entry = AuditEntry.objects(action="case_file.view").get()
    assert entry.object_id == str(case_file.pk)


# The yearly list ----------------------------------------------------------------------------


def _draft_list(users, year=2027):
    year_list = cf.create_list(users["luutru"], year)
    return cf.add_list_entry(
        users["luutru"],
        year_list.pk,
        {
            "code": "01.TCCB",
            "title": "Hồ sơ tuyển dụng công chức",
            "retention": "03.02",
            "owner_unit": str(users["chanhvanphong"].unit.pk),
        },
    )


def test_list_is_approved_by_a_leader_through_the_workflow(users):
    year_list = _draft_list(users)
    assert year_list.entries[0].retention.label == "70 năm"
    with pytest.raises(ValidationFailed, match="đã có trong danh mục"):
        cf.add_list_entry(
            users["luutru"], year_list.pk, {"code": "01.TCCB", "title": "x", "retention": "01.01"}
        )
    with pytest.raises(Forbidden):
        cf.create_list(users["chuyenvien"], 2028)
    carrier = cf.submit_list(users["luutru"], year_list.pk, str(users["giamdoc"].pk))
    assert carrier.state == "submitted" and carrier.doc_type_name == "Quyết định"
    assert carrier.pending_user_ids == [str(users["giamdoc"].pk)]
    year_list.reload()
    assert year_list.state == "submitted" and year_list.approval_document.pk == carrier.pk
    with pytest.raises(Conflict, match="không sửa được"):
        cf.add_list_entry(users["luutru"], year_list.pk, {"code": "02.X", "title": "x"})
    # The leader sees the usual steps on the decision; no transfer step on a list.
    codes = [a.code for a in engine.available_transitions(carrier, users["giamdoc"])]
    assert codes == ["approve", "return_list"]
    engine.transition(carrier.pk, "approve", users["giamdoc"], {"comment": "Đồng ý"})
    year_list.reload()
    assert year_list.state == "approved"
    assert year_list.approved_by_name == users["giamdoc"].full_name


def test_a_returned_list_can_be_edited_and_submitted_again(users):
    year_list = _draft_list(users)
    first = cf.submit_list(users["luutru"], year_list.pk, str(users["giamdoc"].pk))
    with pytest.raises(ValidationFailed, match="Lý do"):
        engine.transition(first.pk, "return_list", users["giamdoc"])
    engine.transition(first.pk, "return_list", users["giamdoc"], {"reason": "Thiếu hồ sơ"})
    assert CaseFileList.objects.get(pk=year_list.pk).state == "draft"
    cf.add_list_entry(
        users["luutru"],
        year_list.pk,
        {
            "code": "02.VP",
            "title": "Sổ công văn",
            "retention": "10.02",
            "owner_unit": str(users["vanthu"].unit.pk),
        },
    )
    second = cf.submit_list(users["luutru"], year_list.pk, str(users["giamdoc"].pk))
    assert second.pk != first.pk
    assert CaseFileList.objects.get(pk=year_list.pk).approval_document.pk == second.pk


def test_submitting_needs_a_leader_and_changes_nothing_without_one(users):
    year_list = _draft_list(users)
    before = Document.objects.count()
    with pytest.raises(ValidationFailed, match="lãnh đạo"):
        cf.submit_list(users["luutru"], year_list.pk, str(users["chuyenvien"].pk))
    year_list.reload()
    assert year_list.state == "draft" and year_list.approval_document is None
    assert Document.objects.count() == before


def test_editing_a_file_checks_its_input(users):
    year_list = CaseFileList.objects.get()
    entry = next(e for e in year_list.entries if e.code == "07.QLTM")
    planned = cf.open_case_file(users["chuyenvien"], list_id=year_list.pk, entry_id=entry.id)
    with pytest.raises(ValidationFailed) as caught:
        cf.update_case_file(
            users["chuyenvien"],
            planned.pk,
            {"title": "", "start_on": "31/12/2026", "end_on": "01/01/2026", "retention": "01.01"},
            planned.version,
        )
    assert "Vui lòng nhập tiêu đề hồ sơ." in caught.value.message
    assert "Ngày bắt đầu phải trước ngày kết thúc." in caught.value.message
    assert "do lưu trữ điều chỉnh" in caught.value.message  # the list fixed its retention
    with pytest.raises(Conflict):
        cf.update_case_file(users["chuyenvien"], planned.pk, {"title": "x"}, planned.version + 1)
    edited = cf.update_case_file(
        users["chuyenvien"],
        planned.pk,
        {"title": "Hồ sơ kiểm tra Tết", "start_on": "2026-01-02", "note": "Theo KH 5"},
        planned.version,
    )
    assert (edited.title, edited.start_on, edited.note) == (
        "Hồ sơ kiểm tra Tết",
        dt.date(2026, 1, 2),
        "Theo KH 5",
    )
    edited = cf.update_case_file(
        users["luutru"], planned.pk, {"title": edited.title, "retention": "01.01"}, None
    )
    assert edited.retention.label == "Vĩnh viễn" and edited.retention.code == "01.01"


def test_list_entries_can_be_removed_while_drafting(users):
    year_list = _draft_list(users)
    entry = year_list.entries[0]
    year_list = cf.remove_list_entry(users["luutru"], year_list.pk, entry.id)
    assert year_list.entries == []
    with pytest.raises(NotFound):
        cf.remove_list_entry(users["luutru"], year_list.pk, entry.id)
    with pytest.raises(ValidationFailed, match="chưa có hồ sơ nào"):
        cf.submit_list(users["luutru"], year_list.pk, str(users["giamdoc"].pk))


def test_cancelling_a_hand_over_record_releases_its_files(users, units):
    case_file = closed_file(users["chuyenvien"], [migrated_document(units)])
    record = cf._carrier(users["luutru"], "Biên bản giao nhận", "BB", "", dt.datetime.now(dt.UTC))
    CaseFile.objects(pk=case_file.pk).update_one(set__transfer_document=record)
    with pytest.raises(Conflict, match="đang được nộp lưu theo một biên bản khác"):
        cf.transfer_case_files(users["luutru"], [case_file.pk])
    codes = [a.code for a in engine.available_transitions(record, users["luutru"])]
    assert codes == ["transfer", "cancel"]  # a hand-over record is never submitted as a list
    engine.transition(record.pk, "cancel", users["luutru"], {"reason": "Lập nhầm"})
    assert CaseFile.objects.get(pk=case_file.pk).transfer_document is None
    assert cf.transfer_case_files(users["luutru"], [case_file.pk]).state == "transferred"
