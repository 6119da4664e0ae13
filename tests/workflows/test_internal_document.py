"""Internal documents: delivery, read receipts, threads, forwarding and re-distribution."""

import datetime as dt
import io
import sys
import types

import pytest
from werkzeug.datastructures import FileStorage

from models.audit import AuditEntry, utcnow
from models.delegation import Delegation
from models.delivery import Delivery
from models.document import Document
from models.notification import Notification
from tests.fixtures.files.samples import pdf_bytes
from workflows import engine
from workflows import internal_document as internal
from workflows.errors import Forbidden, NotFound, ValidationFailed
from workflows.workflow_definition import plain, publish, save_draft


@pytest.fixture
def send(users, units):
    def make(sender="chanhvanphong", to=("QLTM",), **data):
        keys = [f"unit:{units[r].pk}" if r in units else f"user:{users[r].pk}" for r in to]
        body = {"subject": "Thông báo lịch họp giao ban tuần", "content": "Họp lúc 8 giờ.", **data}
        files = body.pop("files", ())
        return internal.send(users[sender], body, keys, files, reply_to=body.pop("reply_to", None))

    return make


def test_sending_delivers_to_units_and_people_who_are_notified(send, users, units):
    doc = send(to=("QLTM", "KHTC", "cv.qlcn"))
    assert doc.direction == "internal" and doc.state == "sent"
    assert [h.action for h in doc.history] == ["created", "send"]
    assert doc.history[-1].detail["delivered_to"] == [
        "Phòng Quản lý Thương mại",
        "Phòng Kế hoạch - Tài chính",
        "Phan Văn Nam (QLCN)",
    ]
    deliveries = list(Delivery.objects(document=doc.pk))
    assert all(d.delivered_at is not None and d.thread_id == doc.pk for d in deliveries)
    doc.reload()
    assert str(units["QLTM"].pk) in doc.visible_unit_ids
    assert str(users["cv.qlcn"].pk) in doc.visible_user_ids
    for who in ("truongphong", "tp.khtc", "cv.qlcn"):
        assert Notification.objects(user_id=str(users[who].pk), kind="internal").count() == 1
    assert Notification.objects(user_id=str(users["chuyenvien"].pk)).count() == 0
    assert AuditEntry.objects(action="internal.send", object_id=str(doc.pk)).count() == 1


@pytest.mark.parametrize(
    "bad",
    ["unit:64b000000000000000000000", "user:64b000000000000000000000", "phong-ngoai", "user:x"],
)
def test_recipients_outside_the_agency_store_nothing(send, users, units, bad):
    with pytest.raises(ValidationFailed, match="không thuộc cơ quan") as err:
        internal.send(
            users["chanhvanphong"], {"subject": "Thông báo"}, [f"unit:{units['QLTM'].pk}", bad]
        )
    assert bad[:20] in err.value.message
    assert Document.objects(direction="internal").count() == 0
    assert Delivery.objects.count() == 0


def test_inactive_people_and_empty_lists_are_refused(send, users):
    users["cv.qlcn"].update(set__active=False)
    with pytest.raises(ValidationFailed, match="đã ngừng hoạt động"):
        send(to=("cv.qlcn",))
    with pytest.raises(ValidationFailed, match="Chọn ít nhất một"):
        send(to=())
    assert Document.objects.count() == 0


def test_an_oversized_file_is_refused_before_anything_is_stored(app, send):
    app.config["UPLOAD_MAX_BYTES"] = 1000
    try:
        big = FileStorage(io.BytesIO(pdf_bytes() + b"\n" * 2000), filename="lich-hop.pdf")
        with pytest.raises(ValidationFailed, match="quá lớn"):
            send(files=[big])
    finally:
        app.config["UPLOAD_MAX_BYTES"] = 50 * 1024 * 1024
    assert Document.objects.count() == 0


def test_files_are_attached(send):
    pytest.importorskip("workflows.storage")
    doc = send(files=[FileStorage(io.BytesIO(pdf_bytes()), filename="Lịch họp.pdf")])
    assert [a.filename for a in doc.attachments] == ["Lịch họp.pdf"]


def test_opening_marks_read_and_the_sender_sees_who_read_when(send, users):
    doc = send(to=("QLTM", "cv.khtc"))
    inbox = internal.inbox(users["chuyenvien"])
    assert [d.document.pk for d in inbox] == [doc.pk] and inbox[0].read_at is None
    assert internal.inbox(users["tp.qlcn"]) == []
    opened = internal.get_for(users["chuyenvien"], doc.pk)
    assert opened.pk == doc.pk
    receipts = {d.name: d for d in internal.receipts(doc, users["chanhvanphong"])}
    assert receipts["Phòng Quản lý Thương mại"].read_by_name == "Hoàng Văn Em"
    assert receipts["Ngô Thị Lan (KHTC)"].read_at is None
    # The first reader of a unit's copy is kept; a second reader does not overwrite it.
    internal.get_for(users["truongphong"], doc.pk)
    again = Delivery.objects.get(document=doc.pk, kind="unit")
    assert again.read_by_name == "Hoàng Văn Em"
    assert AuditEntry.objects(action="internal.read", object_id=str(doc.pk)).count() == 1
    # Someone of another unit cannot open it.
    with pytest.raises(NotFound):
        internal.get_for(users["tp.qlcn"], doc.pk)
    assert internal.receipts(doc, users["chuyenvien"]) == [receipts["Phòng Quản lý Thương mại"]]


def test_access_survives_a_recomputation_of_the_visible_lists(send, users):
    doc = send(to=("cv.khtc",))
    Document.objects(pk=doc.pk).update_one(set__visible_user_ids=[doc.created_by_id])
    assert internal.get_for(users["cv.khtc"], doc.pk).pk == doc.pk
    assert str(users["cv.khtc"].pk) in Document.objects.get(pk=doc.pk).visible_user_ids


def test_replies_keep_the_thread(send, users):
    first = send(to=("QLTM",))
    reply = send(
        sender="truongphong",
        to=("chanhvanphong",),
        subject="Trả lời: lịch họp",
        reply_to=str(first.pk),
    )
    again = send(to=("truongphong",), subject="Xác nhận", reply_to=str(reply.pk))
    assert Delivery.objects.get(document=reply.pk).reply_to == first.pk
    assert Delivery.objects.get(document=again.pk).thread_id == first.pk
    subjects = [d.subject for d in internal.thread(again, users["chanhvanphong"])]
    assert subjects == ["Thông báo lịch họp giao ban tuần", "Trả lời: lịch họp", "Xác nhận"]
    # A person may only reply to what they can open.
    with pytest.raises(NotFound):
        send(sender="tp.qlcn", to=("chanhvanphong",), reply_to=str(first.pk))


def test_forwarding_stays_within_the_unit(send, users):
    doc = send(to=("QLTM",))
    made = internal.forward(doc.pk, users["chuyenvien"], [str(users["phophong"].pk)], "Chị xem")
    assert made[0].how == "forwarded" and made[0].note == "Chị xem"
    assert made[0].forwarded_from == Delivery.objects.get(document=doc.pk, kind="unit").pk
    with pytest.raises(ValidationFailed, match="Phòng Quản lý Thương mại"):
        internal.forward(doc.pk, users["chuyenvien"], [str(users["cv.khtc"].pk)])
    with pytest.raises(ValidationFailed, match="đã nhận"):
        internal.forward(doc.pk, users["chuyenvien"], [str(users["phophong"].pk)])
    with pytest.raises(NotFound):
        internal.forward(doc.pk, users["cv.khtc"], [str(users["tp.khtc"].pk)])
    assert AuditEntry.objects(action="internal.forward").count() == 1


def test_unit_heads_redistribute_to_staff_and_deputies_only_by_delegation(send, users):
    doc = send(to=("QLTM",))
    with pytest.raises(Forbidden, match="Chỉ lãnh đạo đơn vị"):
        internal.redistribute(doc.pk, users["phophong"], [str(users["chuyenvien"].pk)])
    made = internal.redistribute(
        doc.pk, users["truongphong"], [str(users["chuyenvien"].pk)], "Đồng chí Em dự họp"
    )
    assert made[0].how == "redistributed" and made[0].redistributed_by == str(
        users["truongphong"].pk
    )
    assert internal.inbox(users["chuyenvien"])[0].document.pk == doc.pk
    with pytest.raises(ValidationFailed, match="không thuộc"):
        internal.redistribute(doc.pk, users["truongphong"], [str(users["cv.khtc"].pk)])
    now = utcnow()
    Delegation(
        principal=users["truongphong"],
        delegate=users["phophong"],
        scopes=["process"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=1),
    ).save()
    with pytest.raises(ValidationFailed, match="đã nhận"):
        internal.redistribute(doc.pk, users["phophong"], [str(users["chuyenvien"].pk)])


def test_a_deputy_redistributes_for_the_head_recorded_as_such(send, users):
    doc = send(to=("QLTM",))
    now = utcnow()
    Delegation(
        principal=users["truongphong"],
        delegate=users["phophong"],
        scopes=["process"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=1),
    ).save()
    made = internal.redistribute(doc.pk, users["phophong"], [str(users["chuyenvien"].pk)])
    assert (made[0].sender_name, made[0].on_behalf_of_name) == ("Phạm Thị Dung", "Lê Văn Cường")
    audit = AuditEntry.objects(action="internal.redistribute").first()
    assert audit.actor_name == "Phạm Thị Dung" and audit.on_behalf_of == "Lê Văn Cường"


def test_a_draft_from_the_document_screens_is_delivered_to_its_recipient_units(
    make_document, users, units
):
    doc = make_document("internal", "chuyenvien", recipient_units=[units["KHTC"]])
    assert doc.state == "draft"
    doc = engine.transition(doc.pk, "send", users["chuyenvien"])
    assert doc.state == "sent"
    assert [d.name for d in Delivery.objects(document=doc.pk)] == ["Phòng Kế hoạch - Tài chính"]
    assert internal.get_for(users["cv.khtc"], doc.pk).pk == doc.pk


def test_an_approval_step_before_sending_keeps_deliveries_waiting(send, users):
    """An admin puts the unit head's approval before 'send': nothing is delivered until then."""
    from models.workflow import WorkflowDefinition

    definition = WorkflowDefinition.objects.get(code="internal")
    spec = plain(definition.draft)
    spec["states"].insert(1, {"code": "approval", "label": "Chờ lãnh đạo đơn vị duyệt"})
    send_t = next(t for t in spec["transitions"] if t["code"] == "send")
    send_t.update({"from": ["approval"], "who": [{"relation": "drafting_unit_head"}]})
    spec["transitions"].append(
        {
            "code": "submit",
            "label": "Trình duyệt",
            "from": ["draft"],
            "to": "approval",
            "who": [{"relation": "drafter"}],
        }
    )
    save_draft(definition, spec, None)
    publish(definition, None)
    doc = send(sender="chuyenvien", to=("KHTC",))
    assert doc.state == "draft"
    assert Delivery.objects.get(document=doc.pk).delivered_at is None
    assert internal.inbox(users["cv.khtc"]) == []
    engine.transition(doc.pk, "submit", users["chuyenvien"])
    engine.transition(doc.pk, "send", users["truongphong"])
    assert internal.inbox(users["cv.khtc"])[0].document.pk == doc.pk


def test_numbering_is_asked_of_the_register_book_and_given_back_on_failure(
    send, users, monkeypatch
):
    calls = []
    book = types.ModuleType("workflows.register_book")

    def assign_number(doc, actor_id):
        calls.append(("assign", actor_id))
        doc.number, doc.notation = 7, "07/TB-VP"

    book.assign_number = assign_number
    book.cancel_number = lambda doc, actor_id, reason: calls.append(("cancel", reason))
    monkeypatch.setitem(sys.modules, "workflows.register_book", book)
    plain_doc = send()
    numbered = internal.send(
        users["chanhvanphong"],
        {"subject": "Thông báo"},
        [f"user:{users['cv.khtc'].pk}"],
        number=True,
    )
    assert numbered.notation == "07/TB-VP" and plain_doc.number is None
    assert calls == [("assign", str(users["chanhvanphong"].pk))]
    monkeypatch.setattr(
        "workflows.engine.start", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("hỏng"))
    )
    with pytest.raises(RuntimeError):
        internal.send(
            users["chanhvanphong"], {"subject": "Lỗi"}, [f"user:{users['cv.khtc'].pk}"], number=True
        )
    assert calls[-1] == ("cancel", "Gửi văn bản nội bộ không thành công")
    assert Document.objects(subject="Lỗi").count() == 0
