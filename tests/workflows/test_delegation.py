import datetime as dt

import pytest

from models.delegation import Delegation
from workflows.delegation import create_delegation, revoke_delegation
from workflows.errors import Forbidden, ValidationFailed


def soon(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def test_a_leader_delegates_signing_while_travelling(users):
    d = create_delegation(
        users["giamdoc"],
        users["giamdoc"],
        users["phogiamdoc"],
        ["sign"],
        None,
        soon(48),
        "Đi công tác Hà Nội",
    )
    assert d.kind == "delegation" and d.scopes == ["sign"]
    assert Delegation.objects.active().filter(delegate=users["phogiamdoc"]).count() == 1
    revoke_delegation(users["giamdoc"], str(d.pk))
    assert Delegation.objects.active().filter(delegate=users["phogiamdoc"]).count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": []}, "phạm vi"),
        ({"ends_at": None}, "thời hạn kết thúc"),
        ({"ends_at": soon(-1)}, "ở tương lai"),
        ({"delegate": "self"}, "chính mình"),
    ],
)
def test_bad_delegations_are_refused(users, kwargs, message):
    args = {"scopes": ["process"], "ends_at": soon(5), "delegate": users["phophong"]}
    args.update(kwargs)
    if args["delegate"] == "self":
        args["delegate"] = users["truongphong"]
    with pytest.raises(ValidationFailed, match=message):
        create_delegation(
            users["truongphong"],
            users["truongphong"],
            args["delegate"],
            args["scopes"],
            None,
            args["ends_at"],
            "",
        )


def test_nobody_delegates_for_someone_else_but_admins(users):
    with pytest.raises(Forbidden):
        create_delegation(
            users["phophong"],
            users["truongphong"],
            users["phophong"],
            ["initial"],
            None,
            soon(5),
            "",
        )
    with pytest.raises(Forbidden, match="cấp phó"):
        create_delegation(
            users["truongphong"],
            users["truongphong"],
            users["phophong"],
            ["initial"],
            None,
            None,
            "",
            kind="deputy",
        )
    standing = create_delegation(
        users["admin"],
        users["truongphong"],
        users["phophong"],
        ["initial", "process"],
        None,
        None,
        "Phó phòng",
        kind="deputy",
    )
    assert standing.ends_at is None


def test_delegation_page(client, users):
    from tests.conftest import csrf_token, web_login

    page = web_login(client, "giamdoc")
    page = client.get("/delegations/")
    ends = (dt.datetime.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/delegations/",
        data={
            "delegate": str(users["phogiamdoc"].pk),
            "scopes": ["sign", "process"],
            "ends_at": ends,
            "reason": "Đi công tác",
            "csrf_token": csrf_token(page.text),
        },
        follow_redirects=True,
    )
    assert "Đã ghi nhận ủy quyền." in response.text
    assert "Trần Thị Bình" in response.text
    bad = client.post(
        "/delegations/",
        data={
            "delegate": str(users["phogiamdoc"].pk),
            "scopes": ["sign"],
            "ends_at": "31/02/2026",
            "csrf_token": csrf_token(page.text),
        },
        follow_redirects=True,
    )
    assert "không đúng định dạng ngày giờ" in bad.text
