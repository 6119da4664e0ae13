import io

import pytest
from werkzeug.datastructures import FileStorage

from models.document import Document
from models.document_type import DocumentType
from tests.fixtures.files.samples import exe_bytes, pdf_bytes
from workflows import document as documents
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed
from workflows.storage import orphan_files


def upload(data: bytes, name: str = "van-ban.pdf") -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


def incoming_data(**extra):
    data = {
        "doc_type": str(DocumentType.objects.get(name="Công văn").pk),
        "notation": "25/UBND-KT",
        "issuer": "UBND tỉnh Đồng Nai",
        "issued_on": "18/11/2026",
        "subject": "V/v báo cáo tình hình thị trường cuối năm",
        "urgency": "1",
        "secrecy": "0",
    }
    data.update(extra)
    return data


def test_registering_an_incoming_document_numbers_it_and_starts_its_workflow(users):
    doc = documents.register_incoming(users["vanthu"], incoming_data(), upload(pdf_bytes()))
    assert doc.arrival_number == 1 and doc.state == "registered"
    assert doc.revisions[0].mime == "application/pdf" and len(doc.revisions[0].sha256) == 64
    second = documents.register_incoming(
        users["vanthu"], incoming_data(notation="26/UBND-KT"), upload(pdf_bytes())
    )
    assert second.arrival_number == 2
    assert doc.issued_on.isoformat() == "2026-11-18"


def test_a_duplicate_needs_confirmation(users):
    documents.register_incoming(users["vanthu"], incoming_data(), upload(pdf_bytes()))
    with pytest.raises(documents.DuplicateWarning, match="25/UBND-KT"):
        documents.register_incoming(users["vanthu"], incoming_data(), upload(pdf_bytes()))
    assert Document.objects.count() == 1
    assert orphan_files() == []
    again = documents.register_incoming(
        users["vanthu"], incoming_data(), upload(pdf_bytes()), confirm_duplicate=True
    )
    assert again.arrival_number == 2


@pytest.mark.parametrize(
    ("changes", "file", "message"),
    [
        ({"subject": ""}, pdf_bytes(), "trích yếu"),
        ({"issuer": ""}, pdf_bytes(), "cơ quan ban hành"),
        ({"issued_on": "31/02/2026"}, pdf_bytes(), "không đúng định dạng ngày"),
        ({"doc_type": "khong-co"}, pdf_bytes(), "loại văn bản"),
        ({"urgency": "9"}, pdf_bytes(), "Độ khẩn"),
        ({"secrecy": "3"}, pdf_bytes(), "độ mật cao hơn"),
        ({}, exe_bytes(), "không phải PDF"),
        ({}, None, "đính kèm bản quét"),
    ],
)
def test_bad_input_leaves_no_document_and_no_file(users, changes, file, message):
    main = upload(file, "cong-van.pdf") if file is not None else None
    with pytest.raises(ValidationFailed, match=message):
        documents.register_incoming(users["vanthu"], incoming_data(**changes), main)
    assert Document.objects.count() == 0
    assert orphan_files() == []


def test_only_clerks_register_incoming_documents(users):
    with pytest.raises(Forbidden):
        documents.register_incoming(users["chuyenvien"], incoming_data(), upload(pdf_bytes()))


def test_a_draft_needs_a_competent_signer(users):
    data = {
        "doc_type": str(DocumentType.objects.get(name="Quyết định").pk),
        "subject": "Quyết định thành lập đoàn kiểm tra",
    }
    with pytest.raises(ValidationFailed, match="chọn người ký"):
        documents.create_draft(users["chuyenvien"], data, upload(pdf_bytes()))
    data["signer"] = str(users["cv.khtc"].pk)
    with pytest.raises(ValidationFailed, match="có quyền ký"):
        documents.create_draft(users["chuyenvien"], data, upload(pdf_bytes()))
    data["signer"] = str(users["giamdoc"].pk)
    doc = documents.create_draft(users["chuyenvien"], data, upload(pdf_bytes()))
    assert doc.signer_title == "GIÁM ĐỐC" and doc.issuer == "Sở Công Thương tỉnh Đồng Nai"
    assert doc.state == "draft" and doc.notation is None


def test_two_people_editing_at_once_the_second_is_refused(users):
    doc = documents.register_incoming(users["vanthu"], incoming_data(), upload(pdf_bytes()))
    version = doc.version
    documents.update_metadata(
        doc.pk, users["vanthu"], incoming_data(subject="Sửa lần một"), version
    )
    with pytest.raises(Conflict, match="người khác thay đổi"):
        documents.update_metadata(
            doc.pk, users["vanthu"], incoming_data(subject="Sửa lần hai"), version
        )
    stored = Document.objects.get(pk=doc.pk)
    assert stored.subject == "Sửa lần một" and stored.history[-1].action == "edited"


def test_visibility_by_unit_assignment_role_and_clearance(users, make_document, units):
    from workflows import engine

    doc = documents.register_incoming(users["vanthu"], incoming_data(), upload(pdf_bytes()))
    secret = documents.register_incoming(
        users["vanthu"], incoming_data(notation="01/MẬT", secrecy="1"), upload(pdf_bytes())
    )
    can = documents.can_view
    assert can(doc, users["giamdoc"]) and can(doc, users["vanthu"]) and can(doc, users["luutru"])
    assert not can(doc, users["cv.khtc"]) and not can(doc, users["chuyenvien"])
    engine.transition(doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)})
    engine.transition(
        doc.pk,
        "assign",
        users["giamdoc"],
        {"assignees": [{"role": "lead", "unit": str(units["QLTM"].pk)}]},
    )
    doc.reload()
    assert can(doc, users["chuyenvien"]) and can(doc, users["phophong"])  # the unit's people
    assert not can(doc, users["cv.khtc"])
    assert not can(secret, users["chuyenvien"]) and can(secret, users["vanthu"])
    with pytest.raises(NotFound):
        documents.get_for(users["cv.khtc"], doc.pk)
    with pytest.raises(NotFound):
        documents.get_for(users["cv.khtc"], "not-an-id")
    from models.audit import AuditEntry

    documents.get_for(users["giamdoc"], secret.pk)
    assert AuditEntry.objects(action="document.view", object_id=str(secret.pk)).count() == 1
