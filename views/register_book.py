"""Register books: the admin list of books and the screen that prints the registers."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import send_file
from flask_admin import Admin, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from mongoengine import ValidationError as ModelValidationError
from wtforms import Field, SelectField, StringField, SubmitField
from wtforms.validators import ValidationError

from models import audit
from models.document import Document
from models.organization import Unit
from models.register_book import (
    BOOK_DIRECTIONS,
    PLACEHOLDER_LABELS,
    NumberReservation,
    RegisterBook,
    check_template,
    vn_today,
)
from views.base import SecuredBaseView, SecuredModelView, current_actor
from workflows.errors import DomainError
from workflows.register_report import (
    REGISTER_KINDS,
    RegisterFilter,
    register_filename,
    register_pdf,
    register_xlsx,
)

TEMPLATE_HELP = "Các trường: " + ", ".join(
    "{" + k + "} " + v for k, v in PLACEHOLDER_LABELS.items()
)


def _template_validator(form: Any, field: Field) -> None:
    try:
        field.data = check_template(field.data)
    except ModelValidationError as exc:
        raise ValidationError(exc.message) from None


def _last_number(view: Any, context: Any, model: RegisterBook, name: str) -> str:
    last = model.last_number(model.year or vn_today().year)
    return f"{last:02d}" if last else "Chưa cấp"


BOOK_LABELS = {
    "name": "Tên sổ",
    "direction": "Loại sổ",
    "year": "Năm",
    "secret": "Sổ văn bản mật",
    "doc_types": "Loại văn bản",
    "units": "Đơn vị",
    "number_format": "Mẫu số, ký hiệu",
    "letter_number_format": "Mẫu số, ký hiệu công văn",
    "last_number": "Số đã cấp gần nhất",
    "active": "Đang sử dụng",
    "note": "Ghi chú",
    "created_at": "Ngày tạo",
}

BOOK_DESCRIPTIONS = {
    "year": "Để trống nếu sổ dùng cho mọi năm (số vẫn bắt đầu lại từ 01 mỗi năm).",
    "secret": "Văn bản mật (Mật, Tối mật, Tuyệt mật) luôn vào sổ riêng.",
    "doc_types": "Để trống: nhận mọi loại văn bản.",
    "units": "Để trống: mọi đơn vị (kể cả đơn vị cấp dưới của đơn vị được chọn).",
    "number_format": "Ví dụ {number:02d}/{type_abbr}-{agency_abbr}. " + TEMPLATE_HELP,
    "letter_number_format": "Cho công văn, ví dụ {number:02d}/{agency_abbr}-{unit_abbr}.",
}


def _book_form_args(columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    args: dict[str, dict[str, Any]] = {
        name: {"label": BOOK_LABELS[name], "description": BOOK_DESCRIPTIONS.get(name, "")}
        for name in columns
    }
    args["number_format"]["validators"] = [_template_validator]
    args["letter_number_format"]["validators"] = [_template_validator]
    for name in ("doc_types", "units"):  # no choice means "all"
        args[name].update(allow_blank=True, blank_text="(tất cả)")
    return args


class RegisterBookView(SecuredModelView):
    """CRUD of register books (sổ văn bản) and their number templates."""

    required_permission = "register.manage"
    column_list = (
        "name",
        "direction",
        "year",
        "secret",
        "doc_types",
        "units",
        "number_format",
        "last_number",
        "active",
    )
    column_searchable_list = ("name",)
    column_filters = ("direction", "year", "secret", "active")
    column_choices = {"direction": list(BOOK_DIRECTIONS.items())}
    column_formatters = {"last_number": _last_number}
    column_default_sort = [("year", True), ("direction", False), ("name", False)]
    form_columns = (
        "name",
        "direction",
        "year",
        "secret",
        "doc_types",
        "units",
        "number_format",
        "letter_number_format",
        "active",
        "note",
    )
    column_labels = BOOK_LABELS
    column_descriptions = BOOK_DESCRIPTIONS
    # Flask-Admin takes form labels from the model, not from column_labels.
    form_args = _book_form_args(form_columns)

    def on_model_delete(self, model: RegisterBook) -> None:
        if (
            Document.objects(register_book=model).first()
            or NumberReservation.objects(book=model).first()
        ):
            raise ValidationError(
                "Sổ đã có văn bản hoặc số giữ trước nên không xóa được; hãy bỏ chọn "
                "«Đang sử dụng» để ngừng dùng sổ."
            )


# Printing registers ------------------------------------------------------------------------


def _parse_date(text: str) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return None
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationError(
        f"Ngày không hợp lệ: «{text[:20]}». Nhập theo dạng ngày/tháng/năm, ví dụ 05/01/2026."
    )


class VnDateField(StringField):
    """A date typed as dd/mm/yyyy (a date picker sends yyyy-mm-dd); `parsed` holds it."""

    parsed: dt.date | None = None

    def pre_validate(self, form: Any) -> None:
        self.parsed = None
        self.parsed = _parse_date(self.data)


class RegisterReportForm(FlaskForm):
    kind = SelectField("Loại sổ", choices=list(REGISTER_KINDS.items()), validate_choice=False)
    book = SelectField("Sổ văn bản", choices=[], validate_choice=False)
    date_from = VnDateField("Từ ngày")
    date_to = VnDateField("Đến ngày")
    unit = SelectField("Đơn vị", choices=[], validate_choice=False)
    pdf = SubmitField("Tải bản PDF")
    xlsx = SubmitField("Tải bản Excel (XLSX)")

    def validate_kind(self, field: Field) -> None:
        if field.data not in REGISTER_KINDS:
            raise ValidationError("Chọn loại sổ.")

    def validate_book(self, field: Field) -> None:
        if field.data and field.data not in dict(field.choices):
            raise ValidationError("Sổ văn bản không tồn tại hoặc bạn không được xem.")

    def validate_unit(self, field: Field) -> None:
        if field.data and field.data not in dict(field.choices):
            raise ValidationError("Đơn vị không tồn tại.")

    def validate_date_to(self, field: Field) -> None:
        start, end = self.date_from.parsed, self.date_to.parsed
        if start and end and start > end:
            raise ValidationError("«Đến ngày» phải sau hoặc bằng «Từ ngày».")


class RegisterReportView(SecuredBaseView):
    """Pick a register, a book, a date range and a unit; download it as PDF or XLSX."""

    required_permission = "register.manage"

    def _books(self) -> list[RegisterBook]:
        books = RegisterBook.objects.order_by("-year", "direction", "name")
        if (current_user.clearance or 0) < 1:
            books = books.filter(secret=False)
        return list(books)

    def _form(self) -> RegisterReportForm:
        form = RegisterReportForm()
        form.book.choices = [("", "Mọi sổ (trừ sổ mật)")] + [
            (str(b.pk), f"{b} – {BOOK_DIRECTIONS.get(b.direction, '')}") for b in self._books()
        ]
        form.unit.choices = [("", "Mọi đơn vị")] + [
            (str(u.pk), u.name) for u in Unit.objects(active=True)
        ]
        return form

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        form = self._form()
        if form.validate_on_submit():
            flt = RegisterFilter(
                book=RegisterBook.objects(pk=form.book.data).first() if form.book.data else None,
                date_from=form.date_from.parsed,
                date_to=form.date_to.parsed,
                unit=Unit.objects(pk=form.unit.data).first() if form.unit.data else None,
                max_secrecy=current_user.clearance or 0,
            )
            fmt = "xlsx" if form.xlsx.data else "pdf"
            try:
                body = (register_xlsx if fmt == "xlsx" else register_pdf)(form.kind.data, flt)
            except DomainError as exc:
                form.kind.errors = [exc.message]
            else:
                audit.record(
                    "register.exported",
                    object_type="RegisterBook",
                    object_id=str(flt.book.pk) if flt.book else None,
                    label=REGISTER_KINDS[form.kind.data],
                    detail={
                        "kind": form.kind.data,
                        "format": fmt,
                        "from": form.date_from.data,
                        "to": form.date_to.data,
                        "unit": form.unit.data,
                    },
                )
                mime = (
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    if fmt == "xlsx"
                    else "application/pdf"
                )
                return send_file(
                    io.BytesIO(body),
                    mimetype=mime,
                    as_attachment=True,
                    download_name=register_filename(form.kind.data, fmt, flt),
                )
        status = 400 if form.is_submitted() else 200
        return self.render("register_book/report.html", form=form, **self._numbers()), status

    def _numbers(self) -> dict[str, Any]:
        """Reservations and numbers cancelled today, per numbering book (outgoing, internal)."""
        from models.register_book import NumberReservation
        from workflows.register_book import reissuable_numbers

        books = [b for b in self._books() if b.direction != "incoming" and b.active]
        return {
            "number_books": books,
            "reservations": NumberReservation.objects(book__in=books, status="reserved"),
            "cancelled": [c for b in books for c in reissuable_numbers(b)],
        }

    @expose("/reserve", methods=("POST",))
    def reserve(self) -> Any:
        from flask import flash, redirect, request, url_for

        from workflows.register_book import reserve_number

        if not FlaskForm().validate_on_submit():
            flash("Phiên làm việc đã hết hạn. Vui lòng thử lại.", "error")
            return redirect(url_for(".index"))
        book = next((b for b in self._books() if str(b.pk) == request.form.get("book")), None)
        if book is None:
            flash("Chọn sổ văn bản để giữ số.", "error")
            return redirect(url_for(".index"))
        try:
            number = reserve_number(book, current_actor(), request.form.get("reason", ""))
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Đã giữ số {number:02d} trong «{book}».", "success")
        return redirect(url_for(".index"))


def add_register_views(admin: Admin) -> None:
    """Add the register book screens to the portal, under "Văn thư"."""
    category = "Văn thư"
    admin.add_view(
        RegisterReportView(
            name="Sổ văn bản", category=category, endpoint="register_report", url="/register-report"
        )
    )
    admin.add_view(
        RegisterBookView(
            RegisterBook, name="Danh mục sổ văn bản", category=category, endpoint="register_book"
        )
    )
