import copy

import pytest

from models.workflow import WorkflowDefinition, WorkflowVersion
from workflows.workflow_definition import (
    DefinitionInvalid,
    export_definition,
    import_definition,
    parse_definition_text,
    publish,
    render_svg,
    validate,
)


@pytest.fixture
def outgoing():
    return copy.deepcopy(WorkflowDefinition.objects.get(code="outgoing").draft)


def test_seeded_definitions_are_valid_and_published():
    for definition in WorkflowDefinition.objects:
        assert validate(definition.draft) == []
        assert definition.published_version == 1


def _t(spec, code):
    return next(t for t in spec["transitions"] if t["code"] == code)


BROKEN = [
    (
        lambda s: s["states"].append({"code": "orphan", "label": "Mồ côi", "final": True}),
        "Trạng thái 'orphan' không thể tới được từ trạng thái bắt đầu.",
    ),
    (
        lambda s: (
            s["states"].append({"code": "stuck", "label": "Kẹt"})
            or _t(s, "cancel").update(to="stuck")
        ),
        "Trạng thái 'stuck' không có bước chuyển đi mà cũng không phải trạng thái kết thúc.",
    ),
    (
        lambda s: [st.pop("final", None) for st in s["states"]],
        "Quy trình phải có ít nhất một trạng thái kết thúc.",
    ),
    (
        lambda s: _t(s, "number").update(who=[{"role": "khong_co"}]),
        "Bước chuyển 'number': Vai trò không tồn tại: 'khong_co'.",
    ),
    (
        lambda s: _t(s, "number").update(actions=[{"id": "bay_mau"}]),
        "Bước chuyển 'number': Hành động không tồn tại: 'bay_mau'.",
    ),
    (
        lambda s: _t(s, "number").update(actions=[{"id": "assign_number", "params": {"x": 1}}]),
        "Hành động 'assign_number' không có tham số: x.",
    ),
    (
        lambda s: _t(s, "number").update(condition="urgency >> 1"),
        "Bước chuyển 'number': Điều kiện sai cú pháp",
    ),
    (
        lambda s: _t(s, "number").update(condition="__class__ == 1"),
        "trường không tồn tại: '__class__'",
    ),
    (
        lambda s: _t(s, "number").update(to="nowhere"),
        "Bước chuyển 'number' đi tới trạng thái không tồn tại: 'nowhere'.",
    ),
    (lambda s: _t(s, "number").update(who=[]), "Bước chuyển 'number' chưa nêu ai được thực hiện."),
    (
        lambda s: (
            s["circuits"][0]["steps"][0].update(who=[{"position": "Phó Giám đốc"}])
            or s["circuits"][0]["steps"].append({"kind": "visa", "who": [{"role": "luu_tru"}]})
            or __import__("models.user", fromlist=["User"])
            .User.objects(
                roles=__import__("models.role", fromlist=["Role"]).Role.objects.get(code="luu_tru")
            )
            .update(set__active=False)
        ),
        "Luồng 'visa', bước 2: không có người dùng nào thực hiện được bước này.",
    ),
    (
        lambda s: s["circuits"][0]["steps"][0].update(kind="stamp"),
        "Luồng 'visa', bước 1: loại bước phải là visa, initial hoặc signature.",
    ),
    (
        lambda s: s.update(initial_state="khong_co"),
        "Trạng thái bắt đầu 'khong_co' không có trong danh sách trạng thái.",
    ),
    (lambda s: s["states"].append(dict(s["states"][0])), "Mã trạng thái bị trùng: 'draft'."),
    (
        lambda s: _t(s, "number").update(inputs=["chu_ky"]),
        "yêu cầu thông tin không tồn tại: 'chu_ky'.",
    ),
]


@pytest.mark.parametrize(("breaks", "message"), BROKEN)
def test_each_broken_definition_gives_its_message(outgoing, breaks, message):
    breaks(outgoing)
    problems = validate(outgoing)
    assert any(message in p for p in problems), problems


def test_publishing_a_broken_draft_is_refused_and_changes_nothing(outgoing, users):
    definition = WorkflowDefinition.objects.get(code="outgoing")
    _t(outgoing, "number")["to"] = "nowhere"
    definition.draft = outgoing
    definition.save()
    with pytest.raises(DefinitionInvalid) as err:
        publish(definition, users["admin"])
    assert err.value.problems
    assert WorkflowDefinition.objects.get(code="outgoing").published_version == 1
    assert WorkflowVersion.objects(code="outgoing").count() == 1


def test_published_versions_are_immutable():
    version = WorkflowVersion.objects.get(code="outgoing", version=1)
    version.spec = {}
    with pytest.raises(PermissionError):
        version.save()


def test_export_import_round_trip(users):
    definition = WorkflowDefinition.objects.get(code="incoming")
    for fmt in ("yaml", "json"):
        text = export_definition(definition, fmt)
        data = parse_definition_text(text)
        data["code"], data["name"] = f"incoming_copy_{fmt}", "Bản sao"
        copy_ = import_definition(data, users["admin"], publish_now=True)
        assert copy_.draft == definition.draft
        assert copy_.published_version == 1


def test_bad_import_text_is_explained():
    from workflows.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="sai cú pháp"):
        parse_definition_text("states: [unclosed")
    with pytest.raises(ValidationFailed, match="'code' và 'name'"):
        parse_definition_text("- just a list")


def test_picture_shows_states_and_transitions(outgoing):
    svg = render_svg(outgoing)
    assert svg.startswith("<svg")
    assert "Chờ lãnh đạo ký ban hành" in svg and "Trình duyệt" in svg
