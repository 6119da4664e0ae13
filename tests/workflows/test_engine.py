import datetime as dt
import threading

import pytest

from models.delegation import Delegation
from models.document import Document
from models.workflow import WorkflowDefinition
from workflows import engine
from workflows.errors import Conflict, ValidationFailed
from workflows.workflow_definition import publish


def codes(doc, user):
    return [a.code for a in engine.available_transitions(doc, user)]


def test_outgoing_draft_runs_the_initial_circuit(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    assert doc.state == "draft"
    assert doc.pending_user_ids == [str(users["chuyenvien"].pk)]
    # The circuit is copied into the document with the drafting unit's head on it.
    assert doc.circuit.status == "draft"
    assert doc.circuit.steps[0].user_ids == [str(users["truongphong"].pk)]
    assert codes(doc, users["truongphong"]) == []
    doc = engine.transition(doc.pk, "submit", users["chuyenvien"], {"comment": "Kính trình"})
    assert doc.state == "review"
    assert doc.pending_user_ids == [str(users["truongphong"].pk)]
    assert codes(doc, users["truongphong"]) == ["circuit_approve", "circuit_reject"]
    assert codes(doc, users["chuyenvien"]) == []
    doc = engine.transition(doc.pk, "circuit_approve", users["truongphong"])
    assert doc.state == "signing"
    assert doc.pending_user_ids == [str(users["giamdoc"].pk)]
    labels = [h.label for h in doc.history]
    assert labels == ["Tạo văn bản (Phát hành văn bản đi, phiên bản 1)", "Trình duyệt", "Ký nháy"]
    assert doc.history[1].comment == "Kính trình"


def test_reject_goes_back_to_the_drafter_who_may_change_people(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    engine.transition(doc.pk, "submit", users["chuyenvien"])
    with pytest.raises(ValidationFailed, match="Lý do"):
        engine.transition(doc.pk, "circuit_reject", users["truongphong"])
    doc = engine.transition(doc.pk, "circuit_reject", users["truongphong"], {"reason": "Sửa lại"})
    assert doc.state == "draft" and doc.circuit.status == "draft"
    doc = engine.set_step_people(doc.pk, 0, [str(users["phophong"].pk)], users["chuyenvien"])
    doc = engine.transition(doc.pk, "submit", users["chuyenvien"])
    assert doc.pending_user_ids == [str(users["phophong"].pk)]
    with pytest.raises(engine.TransitionNotAllowed):
        engine.transition(doc.pk, "circuit_approve", users["truongphong"])


def test_only_the_drafter_changes_circuit_people_and_only_before_start(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    from workflows.errors import Forbidden

    with pytest.raises(Forbidden):
        engine.set_step_people(doc.pk, 0, [str(users["phophong"].pk)], users["truongphong"])
    engine.transition(doc.pk, "submit", users["chuyenvien"])
    with pytest.raises(Conflict, match="đã bắt đầu"):
        engine.set_step_people(doc.pk, 0, [str(users["phophong"].pk)], users["chuyenvien"])


def test_rights_are_checked(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    with pytest.raises(engine.TransitionNotAllowed):
        engine.transition(doc.pk, "submit", users["cv.khtc"])
    with pytest.raises(engine.WrongState):
        engine.transition(doc.pk, "number", users["vanthu"])
    assert Document.objects.get(pk=doc.pk).version == doc.version


def test_incoming_flow_with_assignments_and_deadlines(make_document, users, units):
    doc = make_document("incoming", "vanthu", issuer="UBND tỉnh Đồng Nai", notation="12/UBND-KT")
    assert doc.state == "registered"
    with pytest.raises(ValidationFailed, match="Lãnh đạo được trình"):
        engine.transition(doc.pk, "present", users["vanthu"])
    with pytest.raises(ValidationFailed, match="lãnh đạo có quyền phân công"):
        engine.transition(
            doc.pk, "present", users["vanthu"], {"leader": str(users["chuyenvien"].pk)}
        )
    doc = engine.transition(
        doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)}
    )
    assert doc.pending_user_ids == [str(users["giamdoc"].pk)]
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).isoformat()
    assignees = [
        {"role": "lead", "unit": str(units["QLTM"].pk), "deadline": deadline},
        {"role": "coordinate", "user": str(users["cv.khtc"].pk)},
        {"role": "info", "unit": str(units["QLCN"].pk)},
    ]
    doc = engine.transition(doc.pk, "assign", users["giamdoc"], {"assignees": assignees})
    assert doc.state == "processing"
    assert doc.due_at is not None
    pending = set(doc.pending_user_ids)
    assert {
        str(users["truongphong"].pk),
        str(users["cv.khtc"].pk),
        str(users["tp.qlcn"].pk),
    } <= pending
    # The unit head re-assigns within the unit; the specialist reports; the lead closes it.
    doc = engine.transition(
        doc.pk,
        "reassign",
        users["truongphong"],
        {"assignees": [{"role": "lead", "user": str(users["chuyenvien"].pk)}]},
    )
    doc = engine.transition(doc.pk, "complete", users["cv.khtc"], {"report": "Đã phối hợp"})
    assert doc.state == "processing"  # the lead is not done yet
    doc = engine.transition(doc.pk, "complete", users["chuyenvien"], {"report": "Đã xử lý"})
    assert doc.state == "processing"  # the unit's own lead assignment is still open
    doc = engine.transition(doc.pk, "complete", users["truongphong"], {"report": "Xong"})
    assert doc.state == "completed" and doc.closed and doc.pending_user_ids == []


def test_bad_assignment_input_changes_nothing(make_document, users):
    doc = make_document("incoming", "vanthu", issuer="Bộ Công Thương")
    doc = engine.transition(
        doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)}
    )
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    for bad, message in [
        ([], "Phân công"),
        ([{"role": "lead"}], "không tồn tại"),
        ([{"role": "boss", "user": str(users["chuyenvien"].pk)}], "vai trò"),
        ([{"role": "lead", "user": str(users["chuyenvien"].pk), "deadline": past}], "tương lai"),
        (
            [
                {"role": "lead", "user": str(users["chuyenvien"].pk)},
                {"role": "lead", "user": str(users["cv.khtc"].pk)},
            ],
            "Chỉ có một",
        ),
        ([{"role": "lead", "user": str(users["chuyenvien"].pk), "deadline": "31/02"}], "định dạng"),
    ]:
        with pytest.raises(ValidationFailed, match=message):
            engine.transition(doc.pk, "assign", users["giamdoc"], {"assignees": bad})
    stored = Document.objects.get(pk=doc.pk)
    assert (
        stored.state == "presented" and stored.assignments == [] and stored.version == doc.version
    )


def test_delegation_lets_a_deputy_act_for_the_head_within_its_window(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    doc = engine.transition(doc.pk, "submit", users["chuyenvien"])
    deputy, head = users["phophong"], users["truongphong"]
    assert codes(doc, deputy) == []
    now = dt.datetime.now(dt.UTC)
    Delegation(
        principal=head,
        delegate=deputy,
        scopes=["process"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=1),
    ).save()
    assert codes(doc, deputy) == []  # "process" does not cover initials
    Delegation(
        principal=head,
        delegate=deputy,
        kind="deputy",
        scopes=["initial"],
        starts_at=now - dt.timedelta(hours=1),
    ).save()
    available = engine.available_transitions(doc, deputy)
    assert available[0].on_behalf_of == "Lê Văn Cường"
    doc = engine.transition(doc.pk, "circuit_approve", deputy)
    entry = doc.history[-1]
    assert (entry.actor_name, entry.on_behalf_of_name) == ("Phạm Thị Dung", "Lê Văn Cường")
    assert doc.state == "signing"


def test_expired_delegation_stops_at_the_minute(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    doc = engine.transition(doc.pk, "submit", users["chuyenvien"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    Delegation(
        principal=users["truongphong"],
        delegate=users["phophong"],
        scopes=["initial"],
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(minutes=1),
    ).save()
    assert codes(doc, users["phophong"]) and engine.available_transitions(
        doc, users["phophong"], now + dt.timedelta(seconds=59)
    )
    assert engine.available_transitions(doc, users["phophong"], now + dt.timedelta(minutes=1)) == []
    with pytest.raises(engine.TransitionNotAllowed):
        engine.transition(
            doc.pk,
            "circuit_approve",
            users["phophong"],
            now=now + dt.timedelta(minutes=1, seconds=1),
        )


def test_delegated_rights_cannot_be_passed_on(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    doc = engine.transition(doc.pk, "submit", users["chuyenvien"])
    now = dt.datetime.now(dt.UTC)
    window = {"starts_at": now - dt.timedelta(hours=1), "ends_at": now + dt.timedelta(hours=1)}
    Delegation(
        principal=users["truongphong"], delegate=users["phophong"], scopes=["initial"], **window
    ).save()
    Delegation(
        principal=users["phophong"], delegate=users["chuyenvien"], scopes=["initial"], **window
    ).save()
    assert codes(doc, users["chuyenvien"]) == []


def test_of_two_concurrent_moves_exactly_one_wins(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    with pytest.raises(Conflict):
        engine.transition(doc.pk, "submit", users["chuyenvien"], expected_version=doc.version - 1)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def move(code: str, extra: dict) -> None:
        barrier.wait()
        try:
            engine.transition(doc.pk, code, users["chuyenvien"], extra)
            results.append("ok")
        except Conflict:
            results.append("conflict")
        except engine.WrongState:
            results.append("wrong_state")

    threads = [
        threading.Thread(target=move, args=("submit", {})),
        threading.Thread(target=move, args=("cancel", {"reason": "Không cần nữa"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    stored = Document.objects.get(pk=doc.pk)
    assert stored.version == doc.version + 1
    assert len(stored.history) == 2


def test_a_failing_action_leaves_the_document_as_it_was(make_document, users, monkeypatch):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    from workflows import actions

    undone = []

    def boom(ctx, **params):
        ctx.on_rollback.append(lambda: undone.append(True))
        raise ValidationFailed("Lỗi thử nghiệm")

    monkeypatch.setitem(
        actions.REGISTRY,
        "request_initials",
        actions.ActionType("request_initials", "x", boom, {"circuit": ""}),
    )
    with pytest.raises(ValidationFailed, match="Lỗi thử nghiệm"):
        engine.transition(doc.pk, "submit", users["chuyenvien"])
    stored = Document.objects.get(pk=doc.pk)
    assert stored.state == "draft" and stored.version == doc.version and len(stored.history) == 1
    assert undone == [True]


def test_documents_in_flight_keep_their_version(make_document, users):
    old = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    definition = WorkflowDefinition.objects.get(code="outgoing")
    spec = dict(definition.draft)
    spec["states"] = [
        *spec["states"],
        {
            "code": "legal_review",
            "label": "Pháp chế thẩm định",
            "actors": [{"relation": "drafting_unit_head"}],
        },
    ]
    spec["transitions"] = [dict(t) for t in spec["transitions"]]
    submit = next(t for t in spec["transitions"] if t["code"] == "submit")
    submit["to"] = "legal_review"
    spec["transitions"].append(
        {
            "code": "legal_ok",
            "label": "Thẩm định xong",
            "from": ["legal_review"],
            "to": "review",
            "who": [{"relation": "drafting_unit_head"}],
            "actions": [{"id": "request_initials"}],
        }
    )
    definition.draft = spec
    definition.save()
    assert publish(definition, users["admin"]).version == 2
    new = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    assert (old.workflow_version, new.workflow_version) == (1, 2)
    assert engine.transition(old.pk, "submit", users["chuyenvien"]).state == "review"
    assert engine.transition(new.pk, "submit", users["chuyenvien"]).state == "legal_review"
    assert engine.transition(new.pk, "legal_ok", users["truongphong"]).state == "review"


def test_conditions_select_transitions(make_document, users):
    definition = WorkflowDefinition.objects.get(code="outgoing")
    spec = dict(definition.draft)
    spec["transitions"] = [dict(t) for t in spec["transitions"]]
    cancel = next(t for t in spec["transitions"] if t["code"] == "cancel")
    cancel["condition"] = "urgency < 3"
    definition.draft = spec
    definition.save()
    publish(definition, users["admin"])
    normal = make_document("outgoing", "chuyenvien", signer=users["giamdoc"], urgency=0)
    urgent = make_document("outgoing", "chuyenvien", signer=users["giamdoc"], urgency=3)
    assert "cancel" in codes(normal, users["chuyenvien"])
    assert "cancel" not in codes(urgent, users["chuyenvien"])
    with pytest.raises(ValidationFailed, match="điều kiện"):
        engine.transition(urgent.pk, "cancel", users["chuyenvien"], {"reason": "x"})


def test_migrated_documents_cannot_be_processed(users):
    doc = Document(
        direction="incoming", subject="Cũ", migrated=True, legacy_id="1-VBĐT", state="legacy"
    ).save()
    assert engine.available_transitions(doc, users["admin"]) == []
    with pytest.raises(engine.ReadOnlyDocument):
        engine.transition(doc.pk, "present", users["vanthu"])
