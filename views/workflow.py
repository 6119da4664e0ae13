"""Workflow editor: admins change processing flows in the portal, without code."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from wtforms import (
    BooleanField,
    FloatField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from models.organization import POSITION_LEVELS
from models.role import PERMISSIONS, Role
from models.workflow import WorkflowDefinition, WorkflowVersion
from views.base import SecuredBaseView, current_actor
from workflows import actions, expression
from workflows.errors import DomainError
from workflows.rules import RELATIONS
from workflows.workflow_definition import (
    INPUTS,
    STEP_KINDS,
    DefinitionInvalid,
    export_definition,
    import_definition,
    parse_definition_text,
    plain,
    publish,
    render_svg,
    save_draft,
    validate,
)

CODE = Regexp(r"^[a-z][a-z0-9_]*$", message="Mã chỉ gồm chữ thường không dấu, số và dấu _.")


class MultiCheckbox(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def rule_choices() -> list[tuple[str, str]]:
    """Every rule an admin may pick, encoded as 'kind:value'."""
    out = [(f"relation:{k}", f"Quan hệ: {v}") for k, v in RELATIONS.items() if k != "circuit_step"]
    out += [(f"role:{r.code}", f"Vai trò: {r.name}") for r in Role.objects]
    out += [(f"position_level:{k}", f"Cấp: {v}") for k, v in POSITION_LEVELS.items()]
    out += [(f"permission:{k}", f"Quyền: {v}") for k, v in PERMISSIONS.items()]
    return out


def action_choices() -> list[tuple[str, str]]:
    """Registered actions (later capabilities register theirs at import time)."""
    return [(k, a.label) for k, a in actions.REGISTRY.items()]


def encode_rules(rules: list[dict[str, Any]] | None) -> list[str]:
    return [f"{k}:{v}" for rule in rules or [] for k, v in rule.items()]


def decode_rules(values: list[str]) -> list[dict[str, str]]:
    return [{v.split(":", 1)[0]: v.split(":", 1)[1]} for v in values if ":" in v]


def rule_label(rule: dict[str, Any]) -> str:
    labels = dict(rule_choices())
    return ", ".join(labels.get(f"{k}:{v}", f"{k}: {v}") for k, v in rule.items())


class StateForm(FlaskForm):
    code = StringField("Mã trạng thái", validators=[DataRequired("Nhập mã."), Length(max=40), CODE])
    label = StringField("Tên trạng thái", validators=[DataRequired("Nhập tên."), Length(max=120)])
    final = BooleanField("Trạng thái kết thúc")
    sla_hours = FloatField("Thời hạn xử lý (giờ)", validators=[Optional()])
    actors = MultiCheckbox("Người phải xử lý ở trạng thái này")
    circuit = SelectField("Chạy luồng trình ký", validators=[Optional()])
    on_circuit_done = SelectField("Khi trình ký xong, chuyển tới", validators=[Optional()])
    on_circuit_reject = SelectField("Khi bị trả lại, chuyển tới", validators=[Optional()])


class TransitionForm(FlaskForm):
    code = StringField(
        "Mã bước chuyển", validators=[DataRequired("Nhập mã."), Length(max=40), CODE]
    )
    label = StringField(
        "Tên bước (nút bấm)", validators=[DataRequired("Nhập tên."), Length(max=120)]
    )
    from_states = MultiCheckbox(
        "Từ trạng thái", validators=[DataRequired("Chọn trạng thái nguồn.")]
    )
    to_state = SelectField("Tới trạng thái", validators=[DataRequired("Chọn trạng thái đích.")])
    who = MultiCheckbox("Ai được thực hiện", validators=[DataRequired("Chọn người thực hiện.")])
    scope = SelectField(
        "Phạm vi ủy quyền",
        choices=[("process", "Xử lý"), ("initial", "Ký nháy"), ("sign", "Ký ban hành")],
    )
    condition = StringField("Điều kiện (không bắt buộc)", validators=[Length(max=500)])
    inputs = MultiCheckbox("Thông tin phải nhập", choices=list(INPUTS.items()))
    actions = MultiCheckbox("Hành động")
    action_params = TextAreaField(
        "Tham số hành động (YAML, không bắt buộc)", validators=[Length(max=2000)]
    )


class StepForm(FlaskForm):
    kind = SelectField("Loại bước", choices=list(STEP_KINDS.items()))
    label = StringField("Tên bước", validators=[DataRequired("Nhập tên bước."), Length(max=120)])
    who = MultiCheckbox("Người thực hiện", validators=[DataRequired("Chọn người thực hiện.")])
    mode = SelectField("Cần", choices=[("all", "Tất cả đồng ý"), ("any", "Một người đồng ý")])
    reject_to = SelectField(
        "Trả lại về", choices=[("previous", "Bước trước"), ("drafter", "Người soạn thảo")]
    )
    parallel = BooleanField("Chạy song song với bước trước")


class ImportForm(FlaskForm):
    file = FileField("Tệp YAML hoặc JSON")
    publish_now = BooleanField("Ban hành ngay nếu hợp lệ")


class WorkflowView(SecuredBaseView):
    """List, edit, validate, publish, import and export workflow definitions."""

    required_permission = "workflow.edit"

    def _definition(self, code: str) -> WorkflowDefinition:
        definition = WorkflowDefinition.objects(code=code).first()
        if definition is None:
            abort(404)
        return definition

    def _draft(self, definition: WorkflowDefinition) -> dict[str, Any]:
        return copy.deepcopy(plain(definition.draft))

    def _save(self, definition: WorkflowDefinition, spec: dict[str, Any], message: str) -> Any:
        save_draft(definition, spec, current_actor())
        flash(message + " Bản nháp chưa áp dụng cho văn bản mới cho tới khi ban hành.", "success")
        return redirect(url_for(".detail", code=definition.code))

    @expose("/")
    def index(self) -> Any:
        return self.render(
            "workflow/index.html", definitions=WorkflowDefinition.objects, import_form=ImportForm()
        )

    @expose("/<code>")
    def detail(self, code: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        state_codes = [(s["code"], s.get("label") or s["code"]) for s in spec.get("states") or []]
        circuits = [(c["code"], c.get("name") or c["code"]) for c in spec.get("circuits") or []]
        state_form = StateForm(prefix="state")
        state_form.actors.choices = rule_choices()
        state_form.circuit.choices = [("", "Không"), *circuits]
        state_form.on_circuit_done.choices = [("", "—"), *state_codes]
        state_form.on_circuit_reject.choices = [("", "—"), *state_codes]
        edit = request.args.get("edit")
        transition_form = TransitionForm(prefix="tr")
        transition_form.from_states.choices = state_codes
        transition_form.to_state.choices = state_codes
        transition_form.who.choices = rule_choices()
        transition_form.actions.choices = action_choices()
        if edit:
            existing = next((t for t in spec.get("transitions") or [] if t["code"] == edit), None)
            if existing:
                calls = existing.get("actions") or []
                params = {a["id"]: a["params"] for a in calls if a.get("params")}
                transition_form.process(
                    data={
                        "code": existing["code"],
                        "label": existing.get("label"),
                        "from_states": existing.get("from") or [],
                        "to_state": existing.get("to"),
                        "who": encode_rules(existing.get("who")),
                        "scope": existing.get("scope", "process"),
                        "condition": existing.get("condition") or "",
                        "inputs": existing.get("inputs") or [],
                        "actions": [a["id"] for a in calls],
                        "action_params": yaml.safe_dump(params, allow_unicode=True)
                        if params
                        else "",
                    }
                )
        step_form = StepForm(prefix="step")
        step_form.who.choices = rule_choices()
        return self.render(
            "workflow/detail.html",
            definition=definition,
            spec=spec,
            problems=validate(spec),
            svg=Markup(render_svg(spec)),  # noqa: S704 - SVG produced by Graphviz from escaped labels
            state_form=state_form,
            transition_form=transition_form,
            step_form=step_form,
            editing=edit,
            versions=WorkflowVersion.objects(code=code).order_by("-version"),
            rule_label=rule_label,
            action_labels={k: a.label for k, a in actions.REGISTRY.items()},
            input_labels=INPUTS,
            fields=expression.FIELDS,
            unpublished=definition.has_unpublished_changes,
        )

    @expose("/<code>/state", methods=("POST",))
    def save_state(self, code: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        form = StateForm(prefix="state")
        state_codes = [s["code"] for s in spec.get("states") or []]
        form.actors.choices = rule_choices()
        circuits = [c["code"] for c in spec.get("circuits") or []]
        form.circuit.choices = [("", ""), *[(c, c) for c in circuits]]
        form.on_circuit_done.choices = form.on_circuit_reject.choices = [
            ("", ""),
            *[(c, c) for c in state_codes],
        ]
        if not form.validate_on_submit():
            return self._form_errors(form, code)
        state: dict[str, Any] = {"code": form.code.data, "label": form.label.data}
        if form.final.data:
            state["final"] = True
        if form.sla_hours.data:
            state["sla_hours"] = form.sla_hours.data
        if form.actors.data:
            state["actors"] = decode_rules(form.actors.data)
        if form.circuit.data:
            state.update(
                circuit=form.circuit.data,
                on_circuit_done=form.on_circuit_done.data,
                on_circuit_reject=form.on_circuit_reject.data,
            )
        states = [s for s in spec.get("states") or [] if s["code"] != state["code"]]
        position = next(
            (i for i, s in enumerate(spec.get("states") or []) if s["code"] == state["code"]),
            len(states),
        )
        states.insert(position, state)
        spec["states"] = states
        return self._save(definition, spec, f"Đã lưu trạng thái '{state['label']}'.")

    @expose("/<code>/state/<state>/delete", methods=("POST",))
    def delete_state(self, code: str, state: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        spec["states"] = [s for s in spec.get("states") or [] if s["code"] != state]
        spec["transitions"] = [
            t
            for t in spec.get("transitions") or []
            if t.get("to") != state and state not in (t.get("from") or [])
        ]
        message = f"Đã xóa trạng thái '{state}' và các bước chuyển của nó."
        return self._save(definition, spec, message)

    @expose("/<code>/transition", methods=("POST",))
    def save_transition(self, code: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        form = TransitionForm(prefix="tr")
        codes = [(s["code"], s["code"]) for s in spec.get("states") or []]
        form.from_states.choices = codes
        form.to_state.choices = codes
        form.who.choices = rule_choices()
        form.actions.choices = action_choices()
        if not form.validate_on_submit():
            return self._form_errors(form, code)
        try:
            expression.parse(form.condition.data or "")
            params = yaml.safe_load(form.action_params.data or "") or {}
            if not isinstance(params, dict):
                raise DomainError("Tham số hành động phải là một bảng: mã hành động → tham số.")
        except yaml.YAMLError:
            flash("Tham số hành động không đúng cú pháp YAML.", "error")
            return redirect(url_for(".detail", code=code))
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".detail", code=code))
        transition: dict[str, Any] = {
            "code": form.code.data,
            "label": form.label.data,
            "from": form.from_states.data,
            "to": form.to_state.data,
            "who": decode_rules(form.who.data),
        }
        if form.scope.data != "process":
            transition["scope"] = form.scope.data
        if form.condition.data:
            transition["condition"] = form.condition.data
        if form.inputs.data:
            transition["inputs"] = form.inputs.data
        if form.actions.data:
            transition["actions"] = [
                {"id": a, **({"params": params[a]} if params.get(a) else {})}
                for a in form.actions.data
            ]
        old = spec.get("transitions") or []
        position = next((i for i, t in enumerate(old) if t["code"] == transition["code"]), len(old))
        spec["transitions"] = [t for t in old if t["code"] != transition["code"]]
        spec["transitions"].insert(position, transition)
        return self._save(definition, spec, f"Đã lưu bước chuyển '{transition['label']}'.")

    @expose("/<code>/transition/<transition>/delete", methods=("POST",))
    def delete_transition(self, code: str, transition: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        spec["transitions"] = [t for t in spec.get("transitions") or [] if t["code"] != transition]
        return self._save(definition, spec, f"Đã xóa bước chuyển '{transition}'.")

    @expose("/<code>/circuit/<circuit>/step", methods=("POST",))
    def add_step(self, code: str, circuit: str) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        form = StepForm(prefix="step")
        form.who.choices = rule_choices()
        target = next((c for c in spec.get("circuits") or [] if c["code"] == circuit), None)
        if target is None:
            abort(404)
        if not form.validate_on_submit():
            return self._form_errors(form, code)
        steps = target.setdefault("steps", [])
        last_group = max((s.get("group", i) for i, s in enumerate(steps)), default=-1)
        steps.append(
            {
                "kind": form.kind.data,
                "label": form.label.data,
                "who": decode_rules(form.who.data),
                "mode": form.mode.data,
                "reject_to": form.reject_to.data,
                "group": last_group if form.parallel.data and steps else last_group + 1,
            }
        )
        return self._save(definition, spec, f"Đã thêm bước '{form.label.data}' vào luồng trình ký.")

    @expose("/<code>/circuit/<circuit>/step/<int:index>/delete", methods=("POST",))
    def delete_step(self, code: str, circuit: str, index: int) -> Any:
        definition = self._definition(code)
        spec = self._draft(definition)
        target = next((c for c in spec.get("circuits") or [] if c["code"] == circuit), None)
        if target is None or not 0 <= index < len(target.get("steps") or []):
            abort(404)
        del target["steps"][index]
        return self._save(definition, spec, "Đã xóa bước trình ký.")

    @expose("/<code>/publish", methods=("POST",))
    def publish_view(self, code: str) -> Any:
        definition = self._definition(code)
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            version = publish(definition, current_actor())
        except DefinitionInvalid as exc:
            flash("Chưa ban hành được. Cần sửa: " + " ".join(exc.problems), "error")
        else:
            flash(
                f"Đã ban hành phiên bản {version.version}. Văn bản mới theo phiên bản này; "
                "văn bản đang xử lý giữ phiên bản cũ.",
                "success",
            )
        return redirect(url_for(".detail", code=code))

    @expose("/<code>/discard", methods=("POST",))
    def discard(self, code: str) -> Any:
        definition = self._definition(code)
        if not FlaskForm().validate_on_submit():
            abort(400)
        latest = WorkflowVersion.objects(code=code, version=definition.published_version).first()
        if latest is None:
            flash("Quy trình chưa có phiên bản nào được ban hành.", "error")
            return redirect(url_for(".detail", code=code))
        return self._save(definition, plain(latest.spec), "Đã bỏ các thay đổi chưa ban hành.")

    @expose("/<code>/export.<fmt>")
    def export(self, code: str, fmt: str) -> Any:
        if fmt not in ("yaml", "json"):
            abort(404)
        text = export_definition(self._definition(code), fmt)
        mime = "application/json" if fmt == "json" else "application/x-yaml"
        return Response(
            text,
            mimetype=mime,
            headers={"Content-Disposition": f"attachment; filename=quy-trinh-{code}.{fmt}"},
        )

    @expose("/import", methods=("POST",))
    def import_view(self) -> Any:
        form = ImportForm()
        if not form.validate_on_submit() or not form.file.data:
            flash("Chọn tệp YAML hoặc JSON để nhập.", "error")
            return redirect(url_for(".index"))
        raw = form.file.data.read(512 * 1024 + 1)
        if len(raw) > 512 * 1024:
            flash("Tệp định nghĩa quá lớn (tối đa 512 KB).", "error")
            return redirect(url_for(".index"))
        try:
            data = parse_definition_text(raw.decode("utf-8"))
            problems = validate(
                {
                    k: v
                    for k, v in data.items()
                    if k not in ("code", "name", "kind", "directions", "doc_types")
                }
            )
            if form.publish_now.data and problems:
                raise DefinitionInvalid(problems)
            definition = import_definition(
                data, current_actor(), publish_now=bool(form.publish_now.data)
            )
        except UnicodeDecodeError:
            flash("Tệp phải được mã hóa UTF-8.", "error")
            return redirect(url_for(".index"))
        except DefinitionInvalid as exc:
            flash("Không nhập được. Cần sửa: " + " ".join(exc.problems), "error")
            return redirect(url_for(".index"))
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        flash(f"Đã nhập quy trình '{definition.name}'.", "success")
        return redirect(url_for(".detail", code=definition.code))

    def _form_errors(self, form: FlaskForm, code: str) -> Any:
        for field in form:
            for error in field.errors:
                flash(f"{field.label.text}: {error}", "error")
        return redirect(url_for(".detail", code=code))
