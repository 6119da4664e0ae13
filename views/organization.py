"""Admin screens for the agency, its units and positions."""

from __future__ import annotations

from models.organization import POSITION_LEVELS, UNIT_KINDS
from views.base import SecuredModelView


class AgencyView(SecuredModelView):
    required_permission = "admin.organization"
    can_delete = False
    column_list = ("name", "abbreviation", "organ_id", "address")
    column_labels = {
        "name": "Tên cơ quan",
        "abbreviation": "Viết tắt (dùng trong ký hiệu)",
        "organ_id": "Mã định danh (edXML OrganId)",
        "parent_name": "Cơ quan chủ quản",
        "address": "Địa chỉ",
        "place": "Địa danh (ghi trước ngày tháng)",
        "phone": "Điện thoại",
        "email": "Thư điện tử",
    }


class UnitView(SecuredModelView):
    required_permission = "admin.organization"
    column_list = ("name", "abbreviation", "kind", "parent", "active")
    column_searchable_list = ("name", "abbreviation")
    column_filters = ("kind", "active")
    column_default_sort = "order"
    form_excluded_columns = ("ancestors",)
    column_choices = {"kind": list(UNIT_KINDS.items())}
    column_labels = {
        "name": "Tên đơn vị",
        "abbreviation": "Viết tắt",
        "kind": "Loại đơn vị",
        "parent": "Đơn vị cấp trên",
        "order": "Thứ tự",
        "active": "Đang hoạt động",
    }


class PositionView(SecuredModelView):
    required_permission = "admin.organization"
    column_list = ("name", "level", "order")
    column_labels = {"name": "Chức vụ", "level": "Cấp", "order": "Thứ tự"}
    column_choices = {"level": list(POSITION_LEVELS.items())}
