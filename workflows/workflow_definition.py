"""Workflow definitions: validation, versions, import/export, selection, picture."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from models.audit import record, utcnow
from models.user import User
from models.workflow import WorkflowDefinition, WorkflowVersion
from workflows import actions, expression
from workflows.errors import NotFound, ValidationFailed
from workflows.rules import rule_problem, users_for

log = logging.getLogger(__name__)
DEFINITIONS_DIR = Path(__file__).with_name("definitions")
INPUTS = {
    "comment": "Ý kiến (không bắt buộc)",
    "reason": "Lý do (bắt buộc)",
    "leader": "Lãnh đạo được trình",
    "assignees": "Phân công: chủ trì, phối hợp, để biết",
    "deadline": "Hạn xử lý",
    "report": "Báo cáo kết quả",
    "signing_code": "Mã xác thực ký số (OTP hoặc PIN)",
}
REQUIRED_INPUTS = {"reason", "leader", "assignees", "report", "signing_code"}
SCOPES = ("process", "initial", "sign")
DOT = shutil.which("dot") or "/usr/bin/dot"  # Debian graphviz
STEP_KINDS = {"visa": "Cho ý kiến", "initial": "Ký nháy", "signature": "Ký"}


class DefinitionInvalid(ValidationFailed):
    """A definition with problems; `problems` lists each in Vietnamese."""

    code = "invalid_workflow"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Quy trình chưa hợp lệ: " + " ".join(problems))
        self.problems = problems


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def validate(spec: dict[str, Any]) -> list[str]:
    """Return every problem of a definition spec, in Vietnamese; [] when it can be published."""
    problems: list[str] = []
    if not isinstance(spec, dict):
        return ["Định nghĩa quy trình phải là một bảng khóa–giá trị."]
    states = spec.get("states") or []
    transitions = spec.get("transitions") or []
    circuits = spec.get("circuits") or []
    if not isinstance(states, list) or not states:
        return ["Quy trình phải có ít nhất một trạng thái."]
    codes = [s.get("code") for s in states if isinstance(s, dict)]
    if len(codes) != len(states) or not all(codes):
        problems.append("Mỗi trạng thái phải có mã.")
    for dup in sorted({c for c in codes if c and codes.count(c) > 1}):
        problems.append(f"Mã trạng thái bị trùng: '{dup}'.")
    state_map = {s["code"]: s for s in states if isinstance(s, dict) and s.get("code")}
    circuit_codes = {c.get("code") for c in circuits if isinstance(c, dict)}
    initial = spec.get("initial_state")
    if initial not in state_map:
        problems.append(f"Trạng thái bắt đầu '{initial}' không có trong danh sách trạng thái.")
    finals = [c for c, s in state_map.items() if s.get("final")]
    if not finals:
        problems.append("Quy trình phải có ít nhất một trạng thái kết thúc.")
    for code, state in state_map.items():
        if not state.get("label"):
            problems.append(f"Trạng thái '{code}' chưa có tên tiếng Việt.")
        for rule in _as_list(state.get("actors")):
            if msg := rule_problem(rule):
                problems.append(f"Trạng thái '{code}': {msg}")
        sla = state.get("sla_hours")
        if sla is not None and (not isinstance(sla, int | float) or sla <= 0):
            problems.append(f"Trạng thái '{code}': thời hạn (giờ) phải là số dương.")
        if state.get("circuit"):
            if state["circuit"] not in circuit_codes:
                problems.append(
                    f"Trạng thái '{code}' dùng luồng trình ký không tồn tại: '{state['circuit']}'."
                )
            for key in ("on_circuit_done", "on_circuit_reject"):
                if state.get(key) not in state_map:
                    problems.append(f"Trạng thái '{code}': '{key}' phải trỏ tới một trạng thái.")
        for esc in _as_list(state.get("escalations")):
            if not isinstance(esc, dict) or not isinstance(esc.get("after_hours"), int | float):
                problems.append(f"Trạng thái '{code}': mỗi nhắc việc/chuyển cấp cần 'after_hours'.")
                continue
            for rule in _as_list(esc.get("notify")):
                if msg := rule_problem(rule):
                    problems.append(f"Trạng thái '{code}', chuyển cấp: {msg}")
    t_codes: list[str] = []
    for t in transitions:
        if not isinstance(t, dict) or not t.get("code"):
            problems.append("Mỗi bước chuyển phải có mã.")
            continue
        tc = t["code"]
        t_codes.append(tc)
        if tc.startswith("circuit_"):
            problems.append(f"Mã bước chuyển '{tc}' dành riêng cho luồng trình ký.")
        if not t.get("label"):
            problems.append(f"Bước chuyển '{tc}' chưa có tên tiếng Việt.")
        for src in _as_list(t.get("from")):
            if src not in state_map:
                problems.append(f"Bước chuyển '{tc}' đi từ trạng thái không tồn tại: '{src}'.")
        if not _as_list(t.get("from")):
            problems.append(f"Bước chuyển '{tc}' chưa có trạng thái nguồn.")
        if t.get("to") not in state_map:
            problems.append(f"Bước chuyển '{tc}' đi tới trạng thái không tồn tại: '{t.get('to')}'.")
        who = _as_list(t.get("who"))
        if not who:
            problems.append(f"Bước chuyển '{tc}' chưa nêu ai được thực hiện.")
        for rule in who:
            if msg := rule_problem(rule):
                problems.append(f"Bước chuyển '{tc}': {msg}")
        if t.get("scope", "process") not in SCOPES:
            problems.append(f"Bước chuyển '{tc}': phạm vi ủy quyền không hợp lệ.")
        try:
            expression.parse(t.get("condition") or "")
        except expression.ConditionError as exc:
            problems.append(f"Bước chuyển '{tc}': {exc.message}")
        for name in _as_list(t.get("inputs")):
            if name not in INPUTS:
                problems.append(f"Bước chuyển '{tc}' yêu cầu thông tin không tồn tại: '{name}'.")
        for call in _as_list(t.get("actions")):
            if msg := actions.action_problem(call):
                problems.append(f"Bước chuyển '{tc}': {msg}")
    for dup in sorted({c for c in t_codes if t_codes.count(c) > 1}):
        problems.append(f"Mã bước chuyển bị trùng: '{dup}'.")
    for circuit in circuits:
        problems += _circuit_problems(circuit)
    if initial in state_map:
        problems += _graph_problems(initial, state_map, transitions)
    return problems


def _circuit_problems(circuit: Any) -> list[str]:
    if not isinstance(circuit, dict) or not circuit.get("code"):
        return ["Mỗi luồng trình ký phải có mã."]
    out: list[str] = []
    code = circuit["code"]
    steps = _as_list(circuit.get("steps"))
    if not steps:
        out.append(f"Luồng trình ký '{code}' chưa có bước nào.")
    for i, step in enumerate(steps, 1):
        if not isinstance(step, dict) or step.get("kind") not in STEP_KINDS:
            out.append(f"Luồng '{code}', bước {i}: loại bước phải là visa, initial hoặc signature.")
            continue
        if step.get("mode", "all") not in ("all", "any"):
            out.append(f"Luồng '{code}', bước {i}: chế độ phải là 'all' hoặc 'any'.")
        if step.get("reject_to", "previous") not in ("previous", "drafter"):
            out.append(f"Luồng '{code}', bước {i}: trả lại phải là 'previous' hoặc 'drafter'.")
        rules = _as_list(step.get("who"))
        if not rules:
            out.append(f"Luồng '{code}', bước {i}: chưa nêu người thực hiện.")
        for rule in rules:
            if msg := rule_problem(rule):
                out.append(f"Luồng '{code}', bước {i}: {msg}")
            elif "relation" not in rule and not users_for(rule, None):
                out.append(
                    f"Luồng '{code}', bước {i}: không có người dùng nào thực hiện được bước này."
                )
    return out


def _graph_problems(initial: Any, states: dict[str, Any], transitions: list[Any]) -> list[str]:
    edges: dict[str, set[str]] = {code: set() for code in states}
    for t in transitions:
        if isinstance(t, dict) and t.get("to") in states:
            for src in _as_list(t.get("from")):
                if src in edges:
                    edges[src].add(t["to"])
    for code, state in states.items():
        for key in ("on_circuit_done", "on_circuit_reject"):
            if state.get(key) in states:
                edges[code].add(state[key])
    seen, queue = {initial}, deque([initial])
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    out = [
        f"Trạng thái '{c}' không thể tới được từ trạng thái bắt đầu."
        for c in states
        if c not in seen
    ]
    out += [
        f"Trạng thái '{c}' không có bước chuyển đi mà cũng không phải trạng thái kết thúc."
        for c, s in states.items()
        if not s.get("final") and not edges[c]
    ]
    return out


# Versions -----------------------------------------------------------------------------------


def publish(definition: WorkflowDefinition, user: User | None) -> WorkflowVersion:
    """Validate the draft and publish it as the next version; documents in flight keep theirs."""
    problems = validate(definition.draft)
    if problems:
        raise DefinitionInvalid(problems)
    version = WorkflowVersion(
        code=definition.code,
        version=definition.published_version + 1,
        spec=definition.draft,
        published_by=str(user.pk) if user else None,
    ).save()
    definition.published_version = version.version
    definition.save()
    record("workflow.publish", obj=definition, detail={"version": version.version})
    return version


def version_spec(code: str, version: int) -> dict[str, Any]:
    """Return the spec of a published version."""
    found = WorkflowVersion.objects(code=code, version=version).first()
    if found is None:
        raise NotFound(f"Không tìm thấy phiên bản {version} của quy trình '{code}'.")
    return dict(plain(found.spec))


def definition_for(
    direction: str, type_abbr: str | None, kind: str = "document"
) -> WorkflowDefinition | None:
    """Return the published definition that applies to a new document of this kind."""
    candidates = WorkflowDefinition.objects(
        kind=kind, active=True, published_version__gt=0, directions=direction
    )
    typed = [d for d in candidates if d.doc_type_abbrs and type_abbr in d.doc_type_abbrs]
    generic = [d for d in candidates if not d.doc_type_abbrs]
    chosen = (typed or generic or [None])[0]
    return chosen


def save_draft(definition: WorkflowDefinition, spec: dict[str, Any], user: User | None) -> None:
    """Store an edited draft (validated only for shape; publishing checks everything)."""
    if not isinstance(spec, dict):
        raise ValidationFailed("Định nghĩa quy trình phải là một bảng khóa–giá trị.")
    definition.draft = spec
    definition.draft_updated_at = utcnow()
    definition.draft_updated_by = str(user.pk) if user else None
    definition.save()


# Import / export ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Return `value` as plain dicts and lists (mongoengine hands out its own subclasses)."""
    return json.loads(json.dumps(value, default=str))


def export_definition(definition: WorkflowDefinition, fmt: str = "yaml") -> str:
    """Serialize the definition's draft with its applicability."""
    data = {
        "code": definition.code,
        "name": definition.name,
        "kind": definition.kind,
        "directions": list(definition.directions),
        "doc_types": list(definition.doc_type_abbrs),
        **plain(definition.draft),
    }
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def parse_definition_text(text: str) -> dict[str, Any]:
    """Parse YAML or JSON text of a definition; raise a Vietnamese error on bad syntax."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            f"Tệp định nghĩa không đọc được (YAML/JSON sai cú pháp): {exc}"
        ) from exc
    if not isinstance(data, dict) or not data.get("code") or not data.get("name"):
        raise ValidationFailed("Tệp định nghĩa phải có 'code' và 'name'.")
    return data


def import_definition(
    data: dict[str, Any], user: User | None, *, publish_now: bool = False
) -> WorkflowDefinition:
    """Create or update a definition's draft from imported data (and publish if asked)."""
    meta = {k: data.get(k) for k in ("code", "name", "kind", "directions", "doc_types")}
    spec = {k: v for k, v in data.items() if k not in meta}
    definition = WorkflowDefinition.objects(code=meta["code"]).first() or WorkflowDefinition(
        code=meta["code"]
    )
    definition.name = meta["name"]
    definition.kind = meta["kind"] or "document"
    definition.directions = _as_list(meta["directions"])
    definition.doc_type_abbrs = _as_list(meta["doc_types"])
    definition.draft = spec
    definition.draft_updated_by = str(user.pk) if user else None
    definition.save()
    if publish_now:
        publish(definition, user)
    return definition


def seed_definitions() -> None:
    """Load the default workflows from workflows/definitions/*.yaml (missing ones only)."""
    for path in sorted(DEFINITIONS_DIR.glob("*.yaml")):
        data = parse_definition_text(path.read_text(encoding="utf-8"))
        if WorkflowDefinition.objects(code=data["code"]).first() is None:
            import_definition(data, None, publish_now=True)


# Picture ------------------------------------------------------------------------------------


def _dot_quote(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def to_dot(spec: dict[str, Any]) -> str:
    """Return a Graphviz description of the states and transitions."""
    lines = [
        "digraph workflow {",
        "rankdir=LR;",
        'node [fontname="DejaVu Sans", fontsize=11];',
        'edge [fontname="DejaVu Sans", fontsize=9];',
    ]
    for state in spec.get("states") or []:
        if not isinstance(state, dict) or not state.get("code"):
            continue
        shape = "doublecircle" if state.get("final") else "box"
        label = state.get("label") or state["code"]
        if state.get("circuit"):
            label += f"\n[trình ký: {state['circuit']}]"
        style = (
            ',style="rounded,filled",fillcolor="#e8f0fe"'
            if state["code"] == spec.get("initial_state")
            else ",style=rounded"
        )
        lines.append(
            f"{_dot_quote(state['code'])} [label={_dot_quote(label)},shape={shape}{style}];"
        )
        for key, text in (("on_circuit_done", "trình ký xong"), ("on_circuit_reject", "trả lại")):
            if state.get(key):
                lines.append(
                    f"{_dot_quote(state['code'])} -> {_dot_quote(state[key])} "
                    f"[label={_dot_quote(text)},style=dashed];"
                )
    for t in spec.get("transitions") or []:
        if not isinstance(t, dict):
            continue
        for src in _as_list(t.get("from")):
            lines.append(
                f"{_dot_quote(src)} -> {_dot_quote(t.get('to'))} "
                f"[label={_dot_quote(t.get('label') or t.get('code'))}];"
            )
    lines.append("}")
    return "\n".join(lines)


def render_svg(spec: dict[str, Any]) -> str:
    """Render the definition as SVG with Graphviz `dot`; a message if Graphviz is missing."""
    try:
        out = subprocess.run(  # noqa: S603
            [DOT, "-Tsvg"],
            input=to_dot(spec).encode(),
            capture_output=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("graphviz failed: %s", exc)
        return '<p class="text-muted">Không vẽ được sơ đồ (cần cài Graphviz).</p>'
    svg = out.stdout.decode("utf-8")
    return svg[svg.find("<svg") :]
