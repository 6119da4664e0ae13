"""Legacy migration: admin screens (start, progress, report, purge, mappings) and the API."""

from __future__ import annotations

from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask_admin import Admin, expose
from flask_wtf import FlaskForm

from models.document import Document
from models.legacy_import import PHASE_LABELS, TABLE_LABELS, ImportBatch, ImportMapping
from models.user import User
from views.api import api_bp, api_user, require_auth
from views.base import SecuredBaseView
from workflows import legacy_import as importer
from workflows.errors import DomainError, ValidationFailed
from workflows.legacy import default_mapping

PERMISSION = "migration.run"
DEFAULT_MAX_UPLOAD = 4 * 1024**3
SCREEN_PROBLEMS = 200
SAMPLE_DOCUMENTS = 10
PURGE_WORD = "XÓA"


def max_upload() -> int:
    """Return the largest export .zip accepted by upload (LEGACY_IMPORT_MAX_UPLOAD_BYTES)."""
    from flask import current_app

    return int(current_app.config.get("LEGACY_IMPORT_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD)


def start_import(user: User, form: Any, files: Any) -> ImportBatch:
    """Create and queue a batch from a request: a server path or an uploaded zip."""
    mapping, mapping_name = importer.choose_mapping(
        form.get("mapping_id") or None, form.get("mapping_text") or None
    )
    upload = files.get("file") if files else None
    if upload is not None and upload.filename:
        path = importer.save_upload(upload.stream, upload.filename)
        try:
            batch = importer.create_batch(
                path, kind="upload", name=upload.filename, mapping=mapping,
                mapping_name=mapping_name, user=user,
            )  # fmt: skip
        except DomainError:
            path.unlink(missing_ok=True)
            raise
    else:
        text = form.get("path") or ""
        path = importer.resolve_server_path(text)
        batch = importer.create_batch(
            path, kind="path", name=str(path), mapping=mapping, mapping_name=mapping_name,
            user=user,
        )  # fmt: skip
    importer.enqueue_run(batch, user)
    return batch


class LegacyImportView(SecuredBaseView):
    """Chuyển đổi dữ liệu: import legacy exports and follow them."""

    required_permission = PERMISSION

    def _batch(self, batch_id: str) -> ImportBatch:
        try:
            return importer.get_batch(batch_id)
        except DomainError:
            abort(404)

    @expose("/")
    def index(self) -> Any:
        return self.render(
            "legacy_import/index.html",
            form=FlaskForm(),
            batches=ImportBatch.objects.order_by("-created_at").limit(50),
            exports=importer.list_exports(),
            roots=importer.allowed_roots(),
            mappings=ImportMapping.objects.order_by("name"),
            default_name=default_mapping().name,
            max_upload_mb=max_upload() // (1024 * 1024),
            values=request.args,
        )

    @expose("/start", methods=("POST",))
    def start(self) -> Any:
        if not FlaskForm().validate_on_submit():
            flash("Phiên làm việc đã hết hạn. Vui lòng tải lại trang.", "error")
            return redirect(url_for(".index"))
        try:
            batch = start_import(self._user(), request.form, request.files)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index", path=request.form.get("path", "")))
        flash("Đã bắt đầu chuyển đổi. Trang này tự cập nhật tiến độ.", "success")
        return redirect(url_for(".detail", batch_id=batch.pk))

    @expose("/<batch_id>")
    def detail(self, batch_id: str) -> Any:
        batch = self._batch(batch_id)
        sample = Document.objects(import_batch_id=str(batch.pk)).only(
            "id", "notation", "subject", "legacy_id"
        )
        return self.render(
            "legacy_import/detail.html",
            batch=batch,
            form=FlaskForm(),
            status=importer.batch_status(batch),
            counts=importer.counts_of(batch),
            problems=importer.problems_for(str(batch.pk), SCREEN_PROBLEMS),
            documents=list(sample.limit(SAMPLE_DOCUMENTS)),
            phase_labels=PHASE_LABELS,
            table_labels=TABLE_LABELS,
            severity_labels=importer.SEVERITY_LABELS,
            can_resume=importer.can_resume(batch),
            can_purge=importer.can_purge(batch) and batch.status != "purging",
            purge_word=PURGE_WORD,
        )

    @expose("/<batch_id>/status")
    def status(self, batch_id: str) -> Any:
        return jsonify(importer.batch_status(self._batch(batch_id)))

    @expose("/<batch_id>/problems.csv")
    def problems(self, batch_id: str) -> Any:
        return problems_response(self._batch(batch_id))

    @expose("/<batch_id>/resume", methods=("POST",))
    def resume(self, batch_id: str) -> Any:
        batch = self._batch(batch_id)
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            importer.resume(str(batch.pk), self._user())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đã cho chạy tiếp từ điểm dừng.", "success")
        return redirect(url_for(".detail", batch_id=batch.pk))

    @expose("/<batch_id>/purge", methods=("POST",))
    def purge(self, batch_id: str) -> Any:
        batch = self._batch(batch_id)
        if not FlaskForm().validate_on_submit():
            abort(400)
        if (request.form.get("confirm") or "").strip().upper() != PURGE_WORD:
            flash(f"Gõ {PURGE_WORD} để xác nhận xóa toàn bộ lô.", "error")
            return redirect(url_for(".detail", batch_id=batch.pk))
        try:
            marked = importer.request_purge(str(batch.pk), self._user())
            importer.enqueue_purge(marked, self._user())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash("Đang xóa toàn bộ văn bản và tệp của lô này.", "success")
        return redirect(url_for(".detail", batch_id=batch.pk))

    # Mappings -----------------------------------------------------------------------------

    @expose("/mappings")
    def mappings(self) -> Any:
        return self.render(
            "legacy_import/mappings.html",
            form=FlaskForm(),
            mappings=ImportMapping.objects.order_by("name"),
            default_text=importer.default_mapping_text(),
        )

    @expose("/mappings/new", methods=("GET", "POST"))
    @expose("/mappings/<mapping_id>", methods=("GET", "POST"))
    def mapping(self, mapping_id: str | None = None) -> Any:
        record = None
        if mapping_id:
            record = ImportMapping.objects(pk=mapping_id).first() if len(mapping_id) == 24 else None
            if record is None:
                abort(404)
        form = FlaskForm()
        name = record.name if record else ""
        text = record.text if record else importer.default_mapping_text()
        errors: list[str] = []
        checked = False
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            name, text = request.form.get("name", ""), request.form.get("text", "")
            try:
                if request.form.get("action") == "check":
                    importer.parse_mapping_input(text)
                    checked = True
                else:
                    saved = importer.save_mapping(
                        name, text, self._user(), str(record.pk) if record else None
                    )
                    flash(f"Đã lưu ánh xạ '{saved.name}'.", "success")
                    return redirect(url_for(".mappings"))
            except ValidationFailed as exc:
                errors = [line.lstrip("- ") for line in exc.message.splitlines() if line.strip()]
        return self.render(
            "legacy_import/mapping_form.html",
            form=form,
            record=record,
            name=name,
            text=text,
            errors=errors,
            checked=checked,
        )

    @expose("/mappings/<mapping_id>/delete", methods=("POST",))
    def delete_mapping(self, mapping_id: str) -> Any:
        if not FlaskForm().validate_on_submit():
            abort(400)
        record = ImportMapping.objects(pk=mapping_id).first() if len(mapping_id) == 24 else None
        if record is None:
            abort(404)
        record.delete()
        flash(f"Đã xóa ánh xạ '{record.name}'.", "success")
        return redirect(url_for(".mappings"))


def problems_response(batch: ImportBatch) -> Response:
    """Stream the batch's problems as a CSV download."""
    stamp = batch.created_at.strftime("%Y%m%d-%H%M") if batch.created_at else "lo"
    # The generator only needs the database connection, not the request: no stream_with_context.
    return Response(
        importer.problems_csv(str(batch.pk)),
        mimetype="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="chuyen-doi-{stamp}-{batch.pk}.csv"'
        },
    )


# API -----------------------------------------------------------------------------------------


def _batch_json(batch: ImportBatch) -> dict[str, Any]:
    out = importer.batch_status(batch)
    out["report"] = importer.batch_report(batch)
    out["source"] = batch.source_name
    out["created_at"] = batch.created_at.isoformat() if batch.created_at else None
    out["started_by"] = batch.started_by_name
    return out


def _api_batch(batch_id: str) -> ImportBatch:
    return importer.get_batch(batch_id)


@api_bp.post("/legacy-imports")
@require_auth(PERMISSION)
def api_start_import() -> Any:
    request.max_content_length = max_upload()
    if request.mimetype == "multipart/form-data":
        if "file" not in request.files and not request.form.get("path"):
            raise ValidationFailed("Cần tệp .zip ('file') hoặc đường dẫn ('path').")
        batch = start_import(api_user(), request.form, request.files)
    else:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ValidationFailed(
                'Gửi JSON {"path": "<đường dẫn trên máy chủ>"} hoặc tệp .zip (multipart).'
            )
        form = {k: data.get(k) for k in ("path", "mapping_id") if isinstance(data.get(k), str)}
        if isinstance(data.get("mapping"), str):
            form["mapping_text"] = data["mapping"]
        batch = start_import(api_user(), form, None)
    body = {
        "job_id": batch.job_id,
        "batch_id": str(batch.pk),
        "status_url": f"/api/v1/jobs/{batch.job_id}",
        "batch_url": f"/api/v1/legacy-imports/{batch.pk}",
    }
    return jsonify(body), 202


@api_bp.get("/legacy-imports")
@require_auth(PERMISSION)
def api_list_imports() -> Any:
    batches = ImportBatch.objects.order_by("-created_at").limit(100)
    return jsonify({"items": [importer.batch_status(b) for b in batches]})


@api_bp.get("/legacy-imports/<batch_id>")
@require_auth(PERMISSION)
def api_get_import(batch_id: str) -> Any:
    return jsonify(_batch_json(_api_batch(batch_id)))


@api_bp.get("/legacy-imports/<batch_id>/problems.csv")
@require_auth(PERMISSION)
def api_import_problems(batch_id: str) -> Any:
    return problems_response(_api_batch(batch_id))


@api_bp.post("/legacy-imports/<batch_id>/resume")
@require_auth(PERMISSION)
def api_resume_import(batch_id: str) -> Any:
    job_id = importer.resume(str(_api_batch(batch_id).pk), api_user())
    return jsonify({"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}"}), 202


@api_bp.delete("/legacy-imports/<batch_id>")
@require_auth(PERMISSION)
def api_purge_import(batch_id: str) -> Any:
    batch = importer.request_purge(str(_api_batch(batch_id).pk), api_user())
    job_id = importer.enqueue_purge(batch, api_user())
    return jsonify({"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}"}), 202


# Registration --------------------------------------------------------------------------------


def register_legacy_import(app: Flask, admin: Admin) -> None:
    """Add the migration screens; let their upload exceed the app-wide request size."""
    admin.add_view(
        LegacyImportView(
            name="Chuyển đổi dữ liệu", category="Hệ thống", endpoint="legacy_import",
            url="/legacy-imports",
        )
    )  # fmt: skip
    start_path = "/legacy-imports/start"

    def _allow_large_upload() -> None:
        # CSRF protection reads the form before any view runs: raise the limit first.
        if request.path == start_path and request.method == "POST":
            request.max_content_length = max_upload()

    app.before_request_funcs.setdefault(None, []).insert(0, _allow_large_upload)
