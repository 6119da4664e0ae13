"""Retention periods (thời hạn bảo quản): the table an admin maintains, and date rules.

The rules follow Decree 30/2020 and the Law on Archives: a case file whose retention is
permanent or at least five years goes to the agency archive within one year after the work
ends; its retention is counted from 1 January of the year after the work ends.
"""

from __future__ import annotations

import datetime as dt

from mongoengine import BooleanField, Document, IntField, StringField, ValidationError

from models.audit import audited

PERMANENT_LABEL = "Vĩnh viễn"
TRANSFER_MIN_YEARS = 5  # files kept this long or longer go to the agency archive
TRANSFER_WITHIN_YEARS = 1  # ... within this many years after they are closed
WARN_DAYS = 30  # owners are warned this many days before the transfer deadline
MAX_YEARS = 99


def retention_label(years: int | None, permanent: bool) -> str:
    """Return "Vĩnh viễn" or "N năm"."""
    if permanent:
        return PERMANENT_LABEL
    return f"{years} năm" if years else "Chưa xác định"


def requires_transfer(years: int | None, permanent: bool) -> bool:
    """Tell whether files with this retention must go to the agency archive."""
    return permanent or (years or 0) >= TRANSFER_MIN_YEARS


def add_years(day: dt.date, years: int) -> dt.date:
    """Return the same calendar day `years` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def transfer_deadline(closed_on: dt.date, years: int | None, permanent: bool) -> dt.date | None:
    """Return the last day to transfer a file closed on `closed_on`, or None if not due."""
    if not requires_transfer(years, permanent):
        return None
    return add_years(closed_on, TRANSFER_WITHIN_YEARS)


def warning_starts(deadline: dt.date) -> dt.date:
    """Return the day from which the owner is warned about a transfer deadline."""
    return deadline - dt.timedelta(days=WARN_DAYS)


def retention_ends(work_ended_on: dt.date, years: int | None, permanent: bool) -> dt.date | None:
    """Return the day the retention of a file ends (None: permanent or unknown)."""
    if permanent or not years:
        return None
    return dt.date(work_ended_on.year + 1 + years, 1, 1)


@audited
class RetentionPeriod(Document):
    """One row of the retention table: a kind of record and how long it is kept.

    The seeded rows follow the common items of Circular 10/2022/TT-BNV; each agency
    checks them against the circular and adds its own specialised items.
    """

    code = StringField(required=True, unique=True, max_length=20)  # "01.03": group.item
    group = StringField(required=True, max_length=200)  # "01. Tài liệu tổng hợp"
    title = StringField(required=True, max_length=500)
    years = IntField(min_value=1, max_value=MAX_YEARS)
    permanent = BooleanField(default=False)
    source = StringField(max_length=200, default="Thông tư 10/2022/TT-BNV")
    active = BooleanField(default=True)

    meta = {"collection": "retention_period", "ordering": ["code"], "indexes": ["group"]}

    def __str__(self) -> str:
        return f"{self.code} – {self.title} ({self.label})"

    @property
    def label(self) -> str:
        return retention_label(self.years, bool(self.permanent))

    def clean(self) -> None:
        if self.permanent:
            self.years = None
        elif not self.years:
            raise ValidationError("Nhập số năm bảo quản, hoặc chọn 'Vĩnh viễn'.")


# Common items of the retention table (Circular 10/2022/TT-BNV), seeded for a new agency:
# (code "group.item", group, title, years or None for permanent). The admin checks them
# against the circular and adds the agency's specialised items.
_G1 = "01. Tài liệu tổng hợp"
_G2 = "02. Tài liệu quy hoạch, kế hoạch, thống kê"
_G3 = "03. Tài liệu tổ chức, cán bộ"
_G4 = "04. Tài liệu lao động, tiền lương"
_G5 = "05. Tài liệu tài chính, kế toán"
_G6 = "06. Tài liệu đầu tư, xây dựng cơ bản"
_G7 = "07. Tài liệu thanh tra, giải quyết khiếu nại, tố cáo"
_G8 = "08. Tài liệu thi đua, khen thưởng"
_G9 = "09. Tài liệu hành chính, quản trị công sở"
_G10 = "10. Tài liệu văn thư, lưu trữ"
COMMON_PERIODS: list[tuple[str, str, str, int | None]] = [
    ("01.01", _G1, "Hồ sơ xây dựng, ban hành quy chế, quy định, hướng dẫn chung", None),
    ("01.02", _G1, "Hồ sơ hội nghị tổng kết, sơ kết công tác năm của cơ quan", None),
    ("01.03", _G1, "Kế hoạch, báo cáo công tác năm của cơ quan", None),
    ("01.04", _G1, "Kế hoạch, báo cáo công tác quý, 6 tháng, 9 tháng", 20),
    ("01.05", _G1, "Kế hoạch, báo cáo công tác tháng, tuần", 5),
    ("01.06", _G1, "Công văn trao đổi về công tác tổng hợp", 10),
    ("01.07", _G1, "Tập văn bản gửi chung đến cơ quan (để biết, phối hợp)", 5),
    ("02.01", _G2, "Chiến lược, quy hoạch, kế hoạch dài hạn, trung hạn", None),
    ("02.02", _G2, "Kế hoạch, báo cáo thống kê năm", None),
    ("02.03", _G2, "Báo cáo thống kê quý, tháng", 10),
    ("03.01", _G3, "Hồ sơ xây dựng chức năng, nhiệm vụ, tổ chức bộ máy", None),
    ("03.02", _G3, "Hồ sơ bổ nhiệm, điều động, luân chuyển cán bộ", 70),
    ("03.03", _G3, "Hồ sơ nâng bậc lương, chuyển ngạch", 20),
    ("03.04", _G3, "Hồ sơ đào tạo, bồi dưỡng cán bộ, công chức", 10),
    ("03.05", _G3, "Hồ sơ xử lý kỷ luật cán bộ, công chức", 70),
    ("04.01", _G4, "Hồ sơ xây dựng quy chế tiền lương, thu nhập", None),
    ("04.02", _G4, "Bảng lương, bảng chấm công", 20),
    ("05.01", _G5, "Báo cáo tài chính, báo cáo quyết toán năm", None),
    ("05.02", _G5, "Hồ sơ dự toán ngân sách năm", 20),
    ("05.03", _G5, "Chứng từ kế toán", 10),
    ("05.04", _G5, "Sổ kế toán chi tiết, sổ kế toán tổng hợp", 10),
    ("06.01", _G6, "Hồ sơ công trình xây dựng nhóm A, cấp đặc biệt", None),
    ("06.02", _G6, "Hồ sơ sửa chữa nhỏ công trình, trụ sở", 15),
    ("07.01", _G7, "Hồ sơ thanh tra vụ việc nghiêm trọng", None),
    ("07.02", _G7, "Hồ sơ thanh tra, kiểm tra khác", 15),
    ("07.03", _G7, "Hồ sơ giải quyết khiếu nại, tố cáo", 15),
    ("08.01", _G8, "Hồ sơ khen thưởng hình thức của Nhà nước", None),
    ("08.02", _G8, "Hồ sơ khen thưởng các hình thức khác", 20),
    ("09.01", _G9, "Hồ sơ quản lý tài sản, trang thiết bị", 20),
    ("09.02", _G9, "Công văn trao đổi về công tác hành chính, quản trị", 10),
    ("09.03", _G9, "Sổ theo dõi sử dụng xe, văn phòng phẩm", 5),
    ("09.04", _G9, "Giấy mời, giấy giới thiệu, phiếu gửi", 2),
    ("10.01", _G10, "Danh mục hồ sơ; mục lục, biên bản giao nộp hồ sơ vào Lưu trữ", None),
    ("10.02", _G10, "Sổ đăng ký văn bản đi, văn bản đến", 20),
    ("10.03", _G10, "Hồ sơ tiêu hủy tài liệu hết giá trị", 20),
]
