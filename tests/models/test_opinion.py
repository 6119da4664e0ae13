"""The opinion and delivery models: labels, counts, what the API shows, uniqueness."""

import datetime as dt

import pytest
from mongoengine.errors import NotUniqueError

from models.audit import utcnow
from models.delivery import Delivery
from models.opinion import OpinionRequest, OpinionTarget


def _request(users, units, **fields):
    unit, user = units["KHTC"], users["cv.qlcn"]
    return OpinionRequest(
        subject="Góp ý",
        requester=users["chanhvanphong"],
        requester_name="Lý Thị Hoa",
        targets=[
            OpinionTarget(key=f"unit:{unit.pk}", kind="unit", unit=unit, name=unit.name),
            OpinionTarget(key=f"user:{user.pk}", kind="user", user=user, name=user.full_name),
        ],
        target_keys=[f"unit:{unit.pk}", f"user:{user.pk}"],
        deadline_at=utcnow() + dt.timedelta(hours=2),
        **fields,
    ).save()


def test_labels_counts_and_b_thay_a(users, units):
    req = _request(users, units)
    first, second = req.targets
    first.answer, first.answered_by_name, first.on_behalf_of_name = "agree", "B", "A"
    second.missed = True
    assert req.counts == {"agree": 1, "disagree": 0, "other": 0, "none": 1}
    assert first.answer_label == "Đồng ý" and first.answered_by_text == "B thay A"
    assert second.answer_label == "Không có ý kiến (quá hạn)" and second.answered_by_text == ""
    assert OpinionTarget(key="x", kind="user", name="x").answer_label == "Chưa trả lời"


def test_the_api_shows_only_the_answers_asked_for(users, units):
    req = _request(users, units)
    req.targets[0].answer, req.targets[0].comment = "disagree", "Chưa phù hợp"
    req.save()
    hidden = req.to_api({req.targets[1].key})
    assert "answer" not in hidden["targets"][0] and hidden["targets"][0]["answered"] is True
    shown = req.to_api()
    assert shown["targets"][0]["comment"] == "Chưa phù hợp"
    assert shown["status"] == "open" and shown["deadline_at"].endswith("+00:00")


def test_a_document_is_delivered_once_per_recipient(users, make_document):
    doc = make_document("internal", "chanhvanphong")
    common = {
        "document": doc,
        "thread_id": doc.pk,
        "kind": "user",
        "user": users["cv.khtc"],
        "name": "Ngô Thị Lan",
        "sender_id": str(users["chanhvanphong"].pk),
        "sender_name": "Lý Thị Hoa",
    }
    Delivery(key=f"user:{users['cv.khtc'].pk}", **common).save()
    with pytest.raises(NotUniqueError):
        Delivery(key=f"user:{users['cv.khtc'].pk}", **common).save()
    # Not delivered yet: nobody's inbox shows it.
    assert list(Delivery.objects.for_user(users["cv.khtc"])) == []
