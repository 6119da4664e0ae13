"""Opinion collection: deadlines, answers by heads and delegates, reminders, closing, summary."""

import datetime as dt
import io
import subprocess

import openpyxl
import pytest
import time_machine
from werkzeug.datastructures import FileStorage

from models.audit import AuditEntry, utcnow
from models.delegation import Delegation
from models.document import Document
from models.notification import Notification
from models.opinion import OpinionRequest
from models.workflow import WorkflowDefinition
from tests.fixtures.files.samples import pdf_bytes
from workflows import engine, opinion_summary
from workflows import opinion as opinions
from workflows.errors import Forbidden, ValidationFailed
from workflows.workflow_definition import plain, publish, save_draft

START = dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.UTC)  # 09:00 in Hà Nội


@pytest.fixture
def ask(users, units):
    def make(requester="chanhvanphong", targets=("KHTC", "QLCN", "QLTM"), hours=2.0, **data):
        now = data.pop("now", None) or utcnow()
        body = {
            "subject": "Góp ý dự thảo kế hoạch kiểm tra thị trường",
            "deadline": (now + dt.timedelta(hours=hours)).isoformat(),
            **data,
        }
        keys = [f"unit:{units[u].pk}" if u in units else f"user:{users[u].pk}" for u in targets]
        return opinions.create_request(users[requester], body, keys, now=now)

    return make


def delegate(users, principal="truongphong", deputy="phophong", scopes=("process",), at=None):
    at = at or utcnow()
    return Delegation(
        principal=users[principal],
        delegate=users[deputy],
        scopes=list(scopes),
        starts_at=at - dt.timedelta(hours=1),
        ends_at=at + dt.timedelta(days=2),
    ).save()


def notes(user, kind=None):
    qs = Notification.objects(user_id=str(user.pk))
    return list(qs.filter(kind=kind) if kind else qs)


def test_a_request_asks_units_whose_heads_are_notified(ask, users, units):
    req = ask()
    assert [t.name for t in req.targets] == [
        "Phòng Kế hoạch - Tài chính",
        "Phòng Quản lý Công nghiệp",
        "Phòng Quản lý Thương mại",
    ]
    assert req.state == "open" and not req.closed
    assert opinions.state_label(req) == "Đang lấy ý kiến"
    for head in ("tp.khtc", "tp.qlcn", "truongphong"):
        assert len(notes(users[head], "opinion")) == 1
    assert notes(users["chuyenvien"], "opinion") == []
    assert AuditEntry.objects(action="opinion.create", object_id=str(req.pk)).count() == 1
    # Everyone of an asked unit sees the request; only the head may answer for the unit.
    assert opinions.can_view(req, users["chuyenvien"])
    assert not opinions.can_view(req, users["chanhthanhtra"])
    assert opinions.answerable(req, users["chuyenvien"]) == []
    assert [t.key for t, _ in opinions.answerable(req, users["truongphong"])] == [
        f"unit:{units['QLTM'].pk}"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"deadline": "2020-01-01T08:00"}, "đã qua"),
        ({"deadline": "ngày mai"}, "không đúng định dạng"),
        ({"deadline": ""}, "Vui lòng nhập hạn"),
        ({"subject": "  "}, "Vui lòng nhập nội dung"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_stored(ask, change, message):
    with pytest.raises(ValidationFailed, match=message):
        ask(**change)
    assert OpinionRequest.objects.count() == 0
    assert Notification.objects.count() == 0


def test_recipients_outside_the_agency_are_refused(users, units):
    users["cv.qlcn"].update(set__active=False)
    for bad in ([f"user:{users['cv.qlcn'].pk}"], ["unit:64b000000000000000000000"], ["phong-x"]):
        with pytest.raises(ValidationFailed, match="không thuộc cơ quan"):
            opinions.create_request(
                users["chanhvanphong"],
                {"subject": "Góp ý", "deadline": (utcnow() + dt.timedelta(hours=1)).isoformat()},
                [f"unit:{units['KHTC'].pk}", *bad],
            )
    assert OpinionRequest.objects.count() == 0


def test_deadline_without_zone_is_vietnam_time_and_can_be_hours_away():
    now = dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.UTC)  # 09:00 VN
    deadline = opinions.parse_deadline("2026-03-16T11:00", now)
    assert deadline == dt.datetime(2026, 3, 16, 4, 0, tzinfo=dt.UTC)
    with pytest.raises(ValidationFailed, match="đã qua"):
        opinions.parse_deadline("2026-03-16T08:59", now)
    assert opinions.parse_deadline("2026-03-17", now).hour == 10  # 17:00 VN


def test_heads_answer_deputies_need_a_delegation_recorded_as_b_thay_a(ask, users, units):
    req = ask()
    qltm = f"unit:{units['QLTM'].pk}"
    with pytest.raises(Forbidden, match="không có quyền cho ý kiến thay Phòng Quản lý Thương mại"):
        opinions.answer(req.pk, users["phophong"], "agree")
    with pytest.raises(Forbidden):
        opinions.answer(req.pk, users["chuyenvien"], "agree", target_key=qltm)
    delegate(users, scopes=("initial",))  # a delegation for initials only does not count
    with pytest.raises(Forbidden):
        opinions.answer(req.pk, users["phophong"], "agree")
    delegate(users)
    req = opinions.answer(req.pk, users["phophong"], "disagree", "Chưa đủ nguồn lực")
    target = req.target(qltm)
    assert target.answer == "disagree" and target.answer_label == "Không đồng ý"
    assert target.answered_by_text == "Phạm Thị Dung thay Lê Văn Cường"
    assert req.history[-1].on_behalf_of_name == "Lê Văn Cường"
    audit = AuditEntry.objects(action="opinion.answer").first()
    assert audit.actor_name == "Phạm Thị Dung" and audit.on_behalf_of == "Lê Văn Cường"
    assert len(notes(users["chanhvanphong"], "opinion_answer")) == 1


def test_an_answer_can_be_revised_until_the_deadline_then_is_refused(ask, users, units):
    with time_machine.travel(START, tick=False):
        req = ask(hours=2)
        opinions.answer(req.pk, users["tp.khtc"], "agree")
    with time_machine.travel(START + dt.timedelta(minutes=90), tick=False):
        req = opinions.answer(req.pk, users["tp.khtc"], "other", "Đề nghị bổ sung dự toán")
    target = req.target(f"unit:{units['KHTC'].pk}")
    assert (target.answer, target.comment, target.revisions) == (
        "other",
        "Đề nghị bổ sung dự toán",
        2,
    )
    assert [h.action for h in req.history] == ["created", "answer", "answer_revised"]
    with pytest.raises(ValidationFailed, match="ghi rõ ý kiến khác"):
        opinions.answer(req.pk, users["tp.qlcn"], "other", "")
    with pytest.raises(ValidationFailed, match="Chọn ý kiến"):
        opinions.answer(req.pk, users["tp.qlcn"], "maybe")
    # The deadline has come, even if the periodic close has not run yet.
    with (
        time_machine.travel(START + dt.timedelta(hours=2), tick=False),
        pytest.raises(opinions.OpinionClosed, match="không nhận thêm ý kiến"),
    ):
        opinions.answer(req.pk, users["tp.khtc"], "agree")
    assert OpinionRequest.objects.get(pk=req.pk).target(target.key).answer == "other"


def test_reminders_go_out_before_the_deadline_once_to_those_who_have_not_answered(ask, users):
    from jobs.reminders import run_opinion_deadlines

    delegate(users, at=START)
    with time_machine.travel(START, tick=False):
        req = ask(hours=3)
        opinions.answer(req.pk, users["tp.khtc"], "agree")
    at = START + dt.timedelta(minutes=30)
    with time_machine.travel(at, tick=False):
        assert run_opinion_deadlines() == {"reminders": 0, "closed": []}
    with time_machine.travel(START + dt.timedelta(minutes=61), tick=False):
        first = run_opinion_deadlines()
        again = run_opinion_deadlines()
    # QLCN's head, QLTM's head and his deputy holding a delegation; KHTC already answered.
    assert first["reminders"] == 3 and again["reminders"] == 0
    assert [n.text.split(" đến")[0] for n in notes(users["tp.qlcn"], "due_soon")] == [
        "Nhắc: còn 1 giờ 59 phút"
    ]
    assert notes(users["phophong"], "due_soon") and not notes(users["tp.khtc"], "due_soon")
    with time_machine.travel(START + dt.timedelta(minutes=151), tick=False):
        assert run_opinion_deadlines()["reminders"] == 3
    assert len(notes(users["truongphong"], "due_soon")) == 2
    req.reload()
    assert len(req.reminders_sent) == 2
    assert [h.label for h in req.history if h.action == "reminder"] == [
        "Nhắc hạn cho ý kiến (còn 1 giờ 59 phút)",
        "Nhắc hạn cho ý kiến (còn 29 phút)",
    ]


def test_reminder_offsets_come_from_the_configuration(app, ask, users):
    app.config["OPINION_REMINDERS_MINUTES"] = "15"
    try:
        with time_machine.travel(START, tick=False):
            ask(hours=1)
        with time_machine.travel(START + dt.timedelta(minutes=30), tick=False):
            assert opinions.send_reminders() == 0
        with time_machine.travel(START + dt.timedelta(minutes=46), tick=False):
            assert opinions.send_reminders() == 3
    finally:
        app.config.pop("OPINION_REMINDERS_MINUTES")


def test_a_request_opened_inside_a_reminder_window_is_not_reminded_at_once(ask):
    with time_machine.travel(START, tick=False):
        ask(hours=1)  # the two-hour reminder would be before the request existed
        assert opinions.send_reminders() == 0
    with time_machine.travel(START + dt.timedelta(minutes=31), tick=False):
        assert opinions.send_reminders() == 3


def test_the_requester_extends_and_reminders_start_again(ask, users):
    with time_machine.travel(START, tick=False):
        req = ask(hours=2.5)
    with time_machine.travel(START + dt.timedelta(hours=2, minutes=1), tick=False):
        assert opinions.send_reminders() == 3
        with pytest.raises(Forbidden, match="Chỉ người gửi lấy ý kiến"):
            opinions.extend(req.pk, users["tp.khtc"], "2026-03-16T15:00")
        with pytest.raises(ValidationFailed, match="sau hạn hiện tại"):
            opinions.extend(req.pk, users["chanhvanphong"], "2026-03-16T11:20")
        req = opinions.extend(req.pk, users["chanhvanphong"], "2026-03-16T15:00", "Chờ số liệu")
    assert req.deadline_at == dt.datetime(2026, 3, 16, 8, 0, tzinfo=dt.UTC)
    assert req.extensions[0].reason == "Chờ số liệu"
    assert req.history[-1].label == "Gia hạn: từ 11:30 16/03/2026 đến 15:00 16/03/2026"
    with time_machine.travel(dt.datetime(2026, 3, 16, 7, 31, tzinfo=dt.UTC), tick=False):
        assert opinions.send_reminders() == 3
        assert opinions.close_expired() == []


def test_the_deadline_closes_the_request_and_marks_those_who_did_not_answer(ask, users, units):
    from jobs.reminders import run_opinion_deadlines

    delegate(users, at=START)
    with time_machine.travel(START, tick=False):
        req = ask(hours=2)
        opinions.answer(req.pk, users["tp.khtc"], "agree", "Thống nhất")
        opinions.answer(req.pk, users["phophong"], "disagree", "Đề nghị lùi thời gian")
    with time_machine.travel(START + dt.timedelta(hours=2), tick=False):
        result = run_opinion_deadlines()
    assert result["closed"] == [str(req.pk)]
    req.reload()
    assert req.closed and req.state == "closed" and req.close_reason == "deadline"
    assert opinions.state_label(req) == "Đã kết thúc"
    missing = req.target(f"unit:{units['QLCN'].pk}")
    assert missing.missed and missing.answer_label == "Không có ý kiến (quá hạn)"
    assert req.history[-1].actor_name == "Hệ thống"
    assert opinion_summary.summary_text(req) == (
        "Tổng hợp ý kiến: 2/3 nơi đã cho ý kiến (Đồng ý 1, Không đồng ý 1, Ý kiến khác 0); "
        "chưa cho ý kiến: Phòng Quản lý Công nghiệp."
    )
    with pytest.raises(opinions.OpinionClosed):
        opinions.answer(req.pk, users["tp.qlcn"], "agree")
    with pytest.raises(opinions.OpinionClosed):
        opinions.extend(req.pk, users["chanhvanphong"], "2026-03-20T10:00")
    assert len(notes(users["chanhvanphong"], "opinion_closed")) == 1


def test_a_close_racing_an_answer_counts_the_answer(ask, users, units):
    req = ask()
    stale = OpinionRequest.objects.get(pk=req.pk)
    opinions.answer(req.pk, users["tp.khtc"], "agree")
    closed = opinions._finish(stale, utcnow(), "deadline", "closed")
    assert closed.target(f"unit:{units['KHTC'].pk}").answer == "agree"
    assert [t.missed for t in closed.targets] == [False, True, True]
    assert [h.action for h in closed.history] == ["created", "answer", "expired"]


def test_the_requester_closes_early_others_cannot(ask, users):
    req = ask()
    with pytest.raises(Forbidden):
        opinions.close(req.pk, users["tp.khtc"])
    req = opinions.close(req.pk, users["chanhvanphong"], "Đủ ý kiến")
    assert req.closed and req.close_reason == "early"
    assert all(t.missed for t in req.targets)
    assert req.history[-1].comment == "Đủ ý kiến"
    with pytest.raises(opinions.OpinionClosed):
        opinions.close(req.pk, users["chanhvanphong"])


def test_summary_pdf_and_xlsx_list_every_recipient(ask, users, tmp_path):
    delegate(users)
    req = ask()
    opinions.answer(req.pk, users["tp.khtc"], "agree", "Thống nhất với dự thảo")
    opinions.answer(req.pk, users["phophong"], "disagree", "Đề nghị lùi thời gian")
    req = opinions.close(req.pk, users["chanhvanphong"])
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(opinion_summary.summary_pdf(req))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert "BẢNG TỔNG HỢP Ý KIẾN" in text
    for expected in (
        "Phòng Kế hoạch - Tài chính",
        "Thống nhất với dự thảo",
        "Phạm Thị Dung thay Lê Văn",
        "Không có ý kiến (quá hạn)",
        "2/3 nơi đã cho ý kiến",
    ):
        assert expected in text
    book = openpyxl.load_workbook(io.BytesIO(opinion_summary.summary_xlsx(req)))
    rows = [r for r in book.active.iter_rows(values_only=True) if r and isinstance(r[0], int)]
    assert [(r[1], r[3]) for r in rows] == [
        ("Phòng Kế hoạch - Tài chính", "Đồng ý"),
        ("Phòng Quản lý Công nghiệp", "Không có ý kiến (quá hạn)"),
        ("Phòng Quản lý Thương mại", "Không đồng ý"),
    ]
    assert rows[2][4] == "Phạm Thị Dung thay Lê Văn Cường"


def test_answers_are_private_unless_the_requester_opens_them(ask, users, units):
    private = ask()
    opinions.answer(private.pk, users["tp.khtc"], "agree")
    assert opinions.shown_answers(private, users["truongphong"]) == {f"unit:{units['QLTM'].pk}"}
    assert opinions.shown_answers(private, users["chanhvanphong"]) is None
    assert not opinions.may_see_summary(private, users["truongphong"])
    public = ask(answers_visible="1")
    assert opinions.shown_answers(public, users["truongphong"]) is None


def test_an_oversized_answer_file_is_refused_before_anything_is_stored(app, ask, users):
    req = ask()
    app.config["UPLOAD_MAX_BYTES"] = 1024
    try:
        upload = FileStorage(io.BytesIO(b"%PDF-1.4\n" + b"x" * 4096), filename="gop-y.pdf")
        with pytest.raises(ValidationFailed, match="quá lớn"):
            opinions.answer(req.pk, users["tp.khtc"], "agree", file=upload)
    finally:
        app.config["UPLOAD_MAX_BYTES"] = 50 * 1024 * 1024
    assert OpinionRequest.objects.get(pk=req.pk).counts["none"] == 3


def test_an_answer_with_a_file_replaces_the_previous_file(ask, users, units):
    storage = pytest.importorskip("workflows.storage")  # lands with the storage branch
    req = ask()
    first = FileStorage(io.BytesIO(pdf_bytes("Ý kiến lần 1")), filename="y-kien-1.pdf")
    req = opinions.answer(req.pk, users["tp.khtc"], "agree", file=first)
    old = req.target(f"unit:{units['KHTC'].pk}").file
    second = FileStorage(io.BytesIO(pdf_bytes("Ý kiến lần 2")), filename="y-kien-2.pdf")
    req = opinions.answer(req.pk, users["tp.khtc"], "agree", file=second)
    assert req.target(f"unit:{units['KHTC'].pk}").file.filename == "y-kien-2.pdf"
    with pytest.raises(Exception):  # noqa: B017 - the old file is gone from GridFS
        storage.open_file(old.file_id).read()


def _outgoing_with_opinions():
    """What an admin does in the workflow editor: add 'Lấy ý kiến' to the draft state."""
    definition = WorkflowDefinition.objects.get(code="outgoing")
    spec = plain(definition.draft)
    spec["transitions"].append(
        {
            "code": "ask_opinions",
            "label": "Lấy ý kiến các đơn vị",
            "from": ["draft"],
            "to": "draft",
            "who": [{"relation": "drafter"}],
            "inputs": ["assignees", "deadline", "comment"],
            "actions": [{"id": "request_opinions", "params": {"hours": 4}}],
        }
    )
    save_draft(definition, spec, None)
    publish(definition, None)


def test_any_workflow_can_request_opinions_and_gets_the_summary_in_its_history(
    make_document, users, units
):
    _outgoing_with_opinions()
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    with time_machine.travel(START, tick=False):
        doc = engine.transition(
            doc.pk,
            "ask_opinions",
            users["chuyenvien"],
            {
                "assignees": [
                    {"role": "coordinate", "unit": str(units["KHTC"].pk)},
                    {"role": "coordinate", "user": str(users["tp.qlcn"].pk)},
                ],
                "comment": "Đề nghị góp ý trong buổi sáng",
            },
        )
    assert doc.state == "draft"
    req = OpinionRequest.objects.get(source_document=doc.pk)
    assert req.deadline_at == START + dt.timedelta(hours=4)
    assert req.content == "Đề nghị góp ý trong buổi sáng"
    assert doc.history[-1].detail["opinion_request"] == str(req.pk)
    assert len(notes(users["tp.khtc"], "opinion")) == 1
    opinions.answer(req.pk, users["tp.khtc"], "agree", now=START + dt.timedelta(hours=1))
    with time_machine.travel(START + dt.timedelta(hours=4), tick=False):
        opinions.close_expired()
    doc = Document.objects.get(pk=doc.pk)
    entry = doc.history[-1]
    assert entry.action == "opinion_summary" and entry.detail["opinion_request"] == str(req.pk)
    assert entry.label.startswith("Tổng hợp ý kiến: 1/2 nơi đã cho ý kiến")
    assert "Đỗ Quang Minh (QLCN)" in entry.label
    storage = pytest.importorskip("workflows.storage")
    assert doc.attachments[-1].filename == f"tong-hop-y-kien-{req.pk}.pdf"
    assert storage.read_file(doc.attachments[-1].file_id).startswith(b"%PDF")
    assert entry.detail["summary_file"] == doc.attachments[-1].filename


def test_request_opinions_rolls_back_with_a_failing_transition(make_document, users):
    _outgoing_with_opinions()
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    with pytest.raises(ValidationFailed, match="Phân công"):
        engine.transition(doc.pk, "ask_opinions", users["chuyenvien"], {})
    with pytest.raises(ValidationFailed, match="không thuộc cơ quan"):
        engine.transition(
            doc.pk,
            "ask_opinions",
            users["chuyenvien"],
            {"assignees": [{"role": "info", "unit": "64b000000000000000000000"}]},
        )
    assert OpinionRequest.objects.count() == 0
    assert Document.objects.get(pk=doc.pk).version == doc.version


def test_bad_action_parameters_are_reported_in_vietnamese():
    from workflows.actions import action_problem

    assert "số giờ dương" in action_problem({"id": "request_opinions", "params": {"hours": -1}})
    assert action_problem({"id": "request_opinions", "params": {"hours": 2}}) is None
