"""Admin screen for document types (Decree 30 Appendix III)."""

from __future__ import annotations

from views.base import SecuredModelView


class DocumentTypeView(SecuredModelView):
    required_permission = "admin.organization"
    column_list = ("name", "abbreviation", "active", "order")
    column_searchable_list = ("name", "abbreviation")
    column_labels = {
        "name": "Tên loại văn bản",
        "abbreviation": "Viết tắt (để trống với công văn)",
        "active": "Đang dùng",
        "order": "Thứ tự",
    }
