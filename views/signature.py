"""Signing screens: documents awaiting my signature, batch progress, verification, key admin.

Also the JSON API routes `/api/v1/signatures`, `/api/v1/signatures/batch` and
`/api/v1/verify`, and two template globals for the document page:
`signing_step(doc)` and `signature_panel(doc)` (see `signature/_panel.html`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, flash, jsonify, redirect, request, url_for
from flask_admin import Admin, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, FloatField, PasswordField, SelectField, StringField
from wtforms.validators import Length, Optional

from jobs import fetch_job, job_to_api
from models.document import Document
from models.signature import BACKENDS, SignatureRecord, SigningIdentity, TrustRoot
from views.api import api_bp, api_user, json_body, require_auth
from views.base import SecuredBaseView, SecuredModelView, current_actor
from workflows import signature, signing_identity, signing_verify
from workflows.document import get_for
from workflows.errors import DomainError, ValidationFailed

SIGNING_PERMISSIONS = ("document.sign", "document.initial", "document.seal")


def _safe_next(value: str | None, default: str) -> str:
    """Only follow local paths after a form (no open redirect)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    return value


def _read_upload(storage: Any) -> tuple[bytes, str]:
    from flask import current_app

    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    data = storage.read(limit + 1) if storage else b""
    return data, (storage.filename or "") if storage else ""


def _job_view(job_id: str) -> dict[str, Any] | None:
    job = fetch_job(job_id)
    if job is None:
        return None
    owner = job.meta.get("owner_id")
    if owner != str(current_user.pk) and not current_user.can("admin.audit"):
        return None
    out = job_to_api(job)
    progress = job.meta.get("progress") or {}
    out["progress"] = {
        "done": progress.get("done", 0),
        "total": progress.get("total", 0),
        "signed": progress.get("signed", 0),
        "failed": progress.get("failed", 0),
    }
    out["failures"] = job.meta.get("failures") or []
    if out["status"] == "failed" and job.meta.get("error"):
        out["error"] = job.meta["error"]
    out["description"] = job.description
    return out


class SigningView(SecuredBaseView):
    """Documents awaiting my initial, signature or the agency seal; sign one or many."""

    def is_visible(self) -> bool:
        return bool(
            current_user.is_authenticated and any(current_user.can(p) for p in SIGNING_PERMISSIONS)
        )

    @expose("/")
    def index(self) -> Any:
        user = current_actor()
        items = signature.awaiting_signature(user)
        return self.render(
            "signature/pending.html",
            items=items,
            limit=signature.BATCH_LIMIT,
            kinds=signature.REASONS,
        )

    @expose("/batch", methods=("POST",))
    def batch(self) -> Any:
        user = current_actor()
        try:
            job = signature.start_batch_signing(
                user,
                request.form.getlist("documents"),
                request.form.get("code"),
                inputs={"comment": request.form.get("comment", "")},
                ip=request.remote_addr,
            )
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        return redirect(url_for(".job", job_id=job.id, next=url_for(".index")))

    @expose("/documents/<doc_id>/sign", methods=("POST",))
    def sign(self, doc_id: str) -> Any:
        user = current_actor()
        back = _safe_next(request.form.get("next"), url_for(".index"))
        try:
            job = signature.start_signing(
                doc_id,
                user,
                request.form.get("transition") or None,
                {"comment": request.form.get("comment", "")},
                request.form.get("code"),
                ip=request.remote_addr,
            )
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(back)
        return redirect(url_for(".job", job_id=job.id, next=back))

    @expose("/jobs/<job_id>")
    def job(self, job_id: str) -> Any:
        state = _job_view(job_id)
        if state is None:
            abort(404)
        back = _safe_next(request.args.get("next"), url_for(".index"))
        return self.render("signature/job.html", job=state, back=back)

    @expose("/jobs/<job_id>.json")
    def job_json(self, job_id: str) -> Any:
        state = _job_view(job_id)
        if state is None:
            return jsonify(
                {"error": {"code": "not_found", "message": "Không tìm thấy tác vụ."}}
            ), 404
        return jsonify(state)


class VerifyForm(FlaskForm):
    file = FileField("Tệp PDF cần kiểm tra", validators=[FileRequired("Vui lòng chọn tệp PDF.")])


class VerifyView(SecuredBaseView):
    """Verify the signatures of any PDF (any signed-in user)."""

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        form = VerifyForm()
        results = None
        error = None
        filename = None
        if form.validate_on_submit():
            data, filename = _read_upload(form.file.data)
            try:
                results = signing_verify.verify_upload(data, filename)
            except DomainError as exc:
                error = exc.message
        elif request.method == "POST":
            error = " ".join(e for errors in form.errors.values() for e in errors)
        status = 400 if error else 200
        page = self.render(
            "signature/verify.html", form=form, signatures=results, error=error, filename=filename
        )
        return page, status


# Administration of keys and trust roots ----------------------------------------------------


class SigningIdentityView(SecuredModelView):
    """Upload signing identities (PKCS#12, PKCS#11 token, remote CSC); key material stays in."""

    required_permission = "signing.manage"
    can_delete = False  # records keep pointing at it: deactivate instead
    can_export = False
    column_list = (
        "label",
        "owner",
        "agency_seal",
        "backend",
        "cert_common_name",
        "not_after",
        "active",
    )
    column_details_list = (
        "label",
        "owner",
        "agency_seal",
        "backend",
        "cert_subject",
        "cert_issuer",
        "cert_serial",
        "cert_sha256",
        "not_before",
        "not_after",
        "pkcs11_lib",
        "pkcs11_token",
        "pkcs11_key_label",
        "csc_base_url",
        "csc_credential_id",
        "active",
        "created_at",
    )
    column_filters = ("agency_seal", "active", "backend")
    column_searchable_list = ("label", "cert_common_name", "cert_serial")
    column_choices = {"backend": list(BACKENDS.items())}
    column_labels = {
        "label": "Tên",
        "owner": "Người sở hữu",
        "agency_seal": "Chữ ký số cơ quan",
        "backend": "Loại khóa",
        "cert_common_name": "Chủ thể chứng thư",
        "cert_subject": "Chủ thể (đầy đủ)",
        "cert_issuer": "Tổ chức cấp",
        "cert_serial": "Số hiệu",
        "cert_sha256": "Dấu vân tay SHA-256",
        "not_before": "Hiệu lực từ",
        "not_after": "Hiệu lực đến",
        "pkcs11_lib": "Thư viện PKCS#11",
        "pkcs11_token": "Nhãn thiết bị (token)",
        "pkcs11_key_label": "Nhãn khóa",
        "csc_base_url": "Địa chỉ dịch vụ CSC",
        "csc_credential_id": "Mã chứng thư (credentialID)",
        "active": "Đang sử dụng",
        "created_at": "Ngày tải lên",
        "pkcs12_file": "Tệp PKCS#12 (.p12, .pfx)",
        "passphrase": "Mật khẩu tệp PKCS#12",
        "signing_pin": "Mã PIN ký số (6–12 chữ số)",
        "seal_file": "Ảnh con dấu (PNG nền trong suốt)",
        "token_pin": "Mã PIN của thiết bị",
        "csc_access_token": "Mã truy cập dịch vụ (access token)",
        "csc_confirm_timeout": "Thời gian chờ xác nhận (giây)",
    }
    column_descriptions = {
        "signing_pin": "Người ký nhập mã này (hoặc mã OTP) mỗi lần ký. Để trống nếu chỉ dùng OTP.",
        "pkcs12_file": "Tệp được mã hóa bằng khóa chủ của máy chủ và không bao giờ tải xuống được.",
    }
    form_columns = (
        "label",
        "owner",
        "agency_seal",
        "backend_choice",
        "pkcs12_file",
        "passphrase",
        "pkcs11_lib",
        "pkcs11_token",
        "pkcs11_key_label",
        "token_pin",
        "csc_base_url",
        "csc_credential_id",
        "csc_access_token",
        "csc_confirm_timeout",
        "signing_pin",
        "seal_file",
    )
    form_extra_fields = {
        "backend_choice": SelectField(
            "Loại khóa", choices=list(BACKENDS.items()), default="pkcs12"
        ),
        "pkcs12_file": FileField("Tệp PKCS#12 (.p12, .pfx)"),
        "passphrase": PasswordField("Mật khẩu tệp PKCS#12"),
        "pkcs11_lib": StringField("Thư viện PKCS#11", validators=[Optional(), Length(max=300)]),
        "pkcs11_token": StringField("Nhãn thiết bị (token)", validators=[Optional()]),
        "pkcs11_key_label": StringField("Nhãn khóa", validators=[Optional()]),
        "token_pin": PasswordField("Mã PIN của thiết bị"),
        "csc_base_url": StringField("Địa chỉ dịch vụ CSC", validators=[Optional()]),
        "csc_credential_id": StringField("Mã chứng thư (credentialID)", validators=[Optional()]),
        "csc_access_token": PasswordField("Mã truy cập dịch vụ (access token)"),
        "csc_confirm_timeout": FloatField("Thời gian chờ xác nhận (giây)", default=90.0),
        "signing_pin": PasswordField("Mã PIN ký số (6–12 chữ số)"),
        "seal_file": FileField("Ảnh con dấu (PNG nền trong suốt)"),
    }
    form_create_rules = ("csrf_token", *form_columns)
    form_edit_rules = ("csrf_token", "label", "active_flag", "signing_pin", "seal_file")

    def get_edit_form(self) -> Any:
        """Edit only the name, the status, the PIN and the seal image; never the key or owner."""

        class EditForm(self.form_base_class):  # type: ignore[name-defined]
            label = StringField("Tên", validators=[Length(max=200)])
            active_flag = BooleanField("Đang sử dụng")
            signing_pin = PasswordField("Mã PIN ký số mới (để trống nếu không đổi)")
            seal_file = FileField("Ảnh con dấu mới (PNG)")

        return EditForm

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, DomainError):
            flash(exc.message, "error")
            return True
        return bool(super().handle_view_exception(exc))

    def create_model(self, form: Any) -> Any:
        try:
            identity = self._create(form)
        except DomainError as exc:
            flash(exc.message, "error")
            return False
        self.after_model_change(form, identity, True)
        return identity

    def _create(self, form: Any) -> SigningIdentity:
        owner = form.owner.data or None
        seal_only = bool(form.agency_seal.data)
        common: dict[str, Any] = {
            "owner": None if seal_only else owner,
            "agency_seal": seal_only,
            "label": form.label.data or None,
            "pin": form.signing_pin.data or None,
            "created_by": current_actor(),
        }
        seal_image = form.seal_file.data.read() if form.seal_file.data else None
        backend = form.backend_choice.data
        if backend == "pkcs12":
            upload = form.pkcs12_file.data
            data, _ = _read_upload(upload)
            if not data:
                raise ValidationFailed("Vui lòng chọn tệp PKCS#12.")
            return signing_identity.create_pkcs12_identity(
                data, form.passphrase.data or "", seal_image=seal_image, **common
            )
        if backend == "pkcs11":
            if not (form.pkcs11_lib.data and form.pkcs11_token.data and form.token_pin.data):
                raise ValidationFailed("Nhập thư viện PKCS#11, nhãn thiết bị và mã PIN thiết bị.")
            return signing_identity.create_pkcs11_identity(
                form.pkcs11_lib.data,
                form.pkcs11_token.data,
                form.pkcs11_key_label.data or "",
                form.token_pin.data,
                seal_image=seal_image,
                **common,
            )
        if not (form.csc_base_url.data and form.csc_credential_id.data):
            raise ValidationFailed("Nhập địa chỉ dịch vụ CSC và mã chứng thư.")
        return signing_identity.create_csc_identity(
            form.csc_base_url.data,
            form.csc_credential_id.data,
            form.csc_access_token.data or "",
            confirm_timeout=float(form.csc_confirm_timeout.data or 90.0),
            **common,
        )

    def on_form_prefill(self, form: Any, id: Any) -> None:
        model = self.get_one(id)
        if model is not None:
            form.active_flag.data = bool(model.active)

    def update_model(self, form: Any, model: SigningIdentity) -> bool:
        try:
            model.label = form.label.data or model.label
            model.active = bool(form.active_flag.data)
            if form.signing_pin.data:
                signing_identity.set_signing_pin(model, form.signing_pin.data)
            if form.seal_file.data:
                model.seal_image.replace(form.seal_file.data.stream)
            model.save()
        except DomainError as exc:
            flash(exc.message, "error")
            return False
        self.after_model_change(form, model, False)
        return True


class TrustRootView(SecuredModelView):
    """CA certificates trusted when verifying signatures."""

    required_permission = "signing.manage"
    can_export = False
    column_list = ("name", "subject", "not_after", "active")
    column_details_list = ("name", "subject", "sha256", "not_after", "active", "created_at")
    column_labels = {
        "name": "Tên",
        "subject": "Chủ thể",
        "sha256": "Dấu vân tay SHA-256",
        "not_after": "Hiệu lực đến",
        "active": "Đang tin cậy",
        "created_at": "Ngày thêm",
        "cert_file": "Tệp chứng thư CA (PEM hoặc DER)",
    }
    form_columns = ("name", "cert_file")
    form_extra_fields = {"cert_file": FileField("Tệp chứng thư CA (PEM hoặc DER)")}
    form_create_rules = ("csrf_token", "name", "cert_file")
    form_edit_rules = ("csrf_token", "name", "active")

    def get_edit_form(self) -> Any:
        """Rename or stop trusting a root; the certificate itself never changes."""

        class EditForm(self.form_base_class):  # type: ignore[name-defined]
            name = StringField("Tên", validators=[Length(max=200)])
            active = BooleanField("Đang tin cậy")

        return EditForm

    def create_model(self, form: Any) -> Any:
        data, _ = _read_upload(form.cert_file.data)
        try:
            if not data:
                raise ValidationFailed("Vui lòng chọn tệp chứng thư.")
            root = signing_verify.add_trust_root(data, form.name.data or None, current_actor())
        except DomainError as exc:
            flash(exc.message, "error")
            return False
        self.after_model_change(form, root, True)
        return root


# JSON API --------------------------------------------------------------------------------


@api_bp.post("/signatures")
@require_auth()
def api_sign() -> Any:
    """Authorize and queue one signature; 202 with the job to poll."""
    data = json_body()
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise ValidationFailed("'comment' phải là chuỗi ký tự.")
    job = signature.start_signing(
        str(data.get("document") or ""),
        api_user(),
        data.get("transition") or None,
        {"comment": comment},
        str(data.get("code") or ""),
        ip=request.remote_addr,
    )
    return jsonify({"job": job_to_api(job)}), 202


@api_bp.post("/signatures/batch")
@require_auth()
def api_sign_batch() -> Any:
    """Sign up to 50 documents with one authorization; 202 with the job to poll."""
    data = json_body()
    documents = data.get("documents")
    if not isinstance(documents, list):
        raise ValidationFailed("'documents' phải là danh sách mã văn bản.")
    job = signature.start_batch_signing(
        api_user(), [str(d) for d in documents], str(data.get("code") or ""), ip=request.remote_addr
    )
    return jsonify({"job": job_to_api(job)}), 202


@api_bp.get("/signatures")
@require_auth()
def api_signatures() -> Any:
    """List a document's signature records and the verification of its current PDF."""
    doc: Document = get_for(api_user(), request.args.get("document"), log_view=False)
    return jsonify(
        {
            "records": [r.to_api() for r in SignatureRecord.objects.of_document(doc)],
            "verification": signing_verify.verification_for(doc),
        }
    )


@api_bp.post("/verify")
@require_auth()
def api_verify() -> Any:
    """Verify every signature of an uploaded PDF (multipart field `file`)."""
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("Gửi tệp PDF trong trường 'file' (multipart/form-data).")
    data, filename = _read_upload(upload)
    return jsonify(
        {"filename": filename, "signatures": signing_verify.verify_upload(data, filename)}
    )


# Registration ------------------------------------------------------------------------------


def _signing_step(doc: Document) -> dict[str, str] | None:
    """For the document page: the signing step the current user may take, if any."""
    if not current_user.is_authenticated:
        return None
    found = signature.signing_transition_for(doc, current_actor())
    if found is None:
        return None
    code, kind = found
    return {"transition": code, "kind": kind, "label": signature.REASONS[kind]}


def _signature_panel(doc: Document) -> list[dict[str, Any]]:
    return signing_verify.verification_for(doc)


def register_signature_views(admin: Admin, app: Flask) -> None:
    """Add the signing screens to the portal and the helpers the document page includes."""
    category = "Ký số"
    admin.add_view(
        SigningView(
            name="Văn bản chờ ký", category=category, endpoint="signature", url="/signatures"
        )
    )
    admin.add_view(
        VerifyView(
            name="Kiểm tra chữ ký số",
            category=category,
            endpoint="signature_verify",
            url="/signatures/verify",
        )
    )
    admin.add_view(
        SigningIdentityView(
            SigningIdentity, name="Chứng thư số", category=category, endpoint="signing_identity"
        )
    )
    admin.add_view(
        TrustRootView(TrustRoot, name="Chứng thư tin cậy", category=category, endpoint="trust_root")
    )
    app.jinja_env.globals.update(signing_step=_signing_step, signature_panel=_signature_panel)
