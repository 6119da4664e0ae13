"""Reference data every installation needs, and the demo agency."""

from __future__ import annotations

import functools
import logging

from flask import current_app

from models.document_type import DocumentType
from models.organization import Agency, Position, Unit
from models.role import Role
from models.user import User
from workflows.auth import hash_password
from workflows.register_book import seed_register_books

log = logging.getLogger(__name__)

DEMO_PASSWORD = "VanThu@2026"  # noqa: S105 - public demo password, listed in the README

ROLES = [
    (
        "quan_tri",
        "Quản trị hệ thống",
        True,
        [
            "admin.users",
            "admin.organization",
            "admin.audit",
            "workflow.edit",
            "register.manage",
            "migration.run",
        ],
    ),
    (
        "lanh_dao",
        "Lãnh đạo cơ quan",
        True,
        [
            "document.view_all",
            "document.assign",
            "document.sign",
            "document.initial",
            "document.process",
            "archive.search",
        ],
    ),
    (
        "lanh_dao_don_vi",
        "Lãnh đạo đơn vị",
        False,
        [
            "document.assign",
            "document.initial",
            "document.process",
            "document.create_draft",
            "document.sign",
        ],
    ),
    (
        "cap_pho_don_vi",
        "Cấp phó đơn vị",
        False,
        [
            "document.assign",
            "document.initial",
            "document.process",
            "document.create_draft",
        ],
    ),
    ("chuyen_vien", "Chuyên viên", False, ["document.create_draft", "document.process"]),
    (
        "van_thu",
        "Văn thư",
        True,
        [
            "document.view_all",
            "document.register_incoming",
            "document.seal",
            "document.dispatch",
            "register.manage",
            "document.process",
        ],
    ),
    ("luu_tru", "Lưu trữ", False, ["archive.search", "archive.manage", "document.view_all"]),
]

POSITIONS = [
    ("Giám đốc", "agency_head", 1),
    ("Phó Giám đốc", "agency_deputy", 2),
    ("Chánh Văn phòng", "unit_head", 10),
    ("Chánh Thanh tra", "unit_head", 10),
    ("Trưởng phòng", "unit_head", 10),
    ("Phó Chánh Văn phòng", "unit_deputy", 20),
    ("Phó Chánh Thanh tra", "unit_deputy", 20),
    ("Phó Trưởng phòng", "unit_deputy", 20),
    ("Chuyên viên", "staff", 50),
    ("Văn thư", "staff", 60),
    ("Lưu trữ viên", "staff", 60),
    ("Quản trị hệ thống", "staff", 70),
]

# Decree 30/2020, Appendix III. Công văn has no abbreviation.
DOCUMENT_TYPES = [
    ("Công văn", ""),
    ("Nghị quyết", "NQ"),
    ("Quyết định", "QĐ"),
    ("Chỉ thị", "CT"),
    ("Quy chế", "QC"),
    ("Quy định", "QyĐ"),
    ("Thông cáo", "TC"),
    ("Thông báo", "TB"),
    ("Hướng dẫn", "HD"),
    ("Chương trình", "CTr"),
    ("Kế hoạch", "KH"),
    ("Phương án", "PA"),
    ("Đề án", "ĐA"),
    ("Dự án", "DA"),
    ("Báo cáo", "BC"),
    ("Biên bản", "BB"),
    ("Tờ trình", "TTr"),
    ("Hợp đồng", "HĐ"),
    ("Công điện", "CĐ"),
    ("Bản ghi nhớ", "BGN"),
    ("Bản thỏa thuận", "BTT"),
    ("Giấy ủy quyền", "GUQ"),
    ("Giấy mời", "GM"),
    ("Giấy giới thiệu", "GGT"),
    ("Giấy nghỉ phép", "GNP"),
    ("Phiếu gửi", "PG"),
    ("Phiếu chuyển", "PC"),
    ("Phiếu báo", "PB"),
    ("Bản sao y", "SY"),
    ("Bản trích sao", "TrS"),
    ("Bản sao lục", "SL"),
]

UNITS = [
    ("Ban Giám đốc Sở", "BGĐ", "leadership"),
    ("Văn phòng Sở", "VP", "office"),
    ("Phòng Kế hoạch - Tài chính", "KHTC", "department"),
    ("Phòng Quản lý Công nghiệp", "QLCN", "department"),
    ("Phòng Quản lý Thương mại", "QLTM", "department"),
    ("Thanh tra Sở", "TTr", "inspectorate"),
]

# username, full name, unit abbreviation, position, roles, clearance
DEMO_USERS = [
    ("admin", "Quản trị Hệ thống", "VP", "Quản trị hệ thống", ["quan_tri"], 0),
    ("giamdoc", "Nguyễn Văn An", "BGĐ", "Giám đốc", ["lanh_dao"], 3),
    ("phogiamdoc", "Trần Thị Bình", "BGĐ", "Phó Giám đốc", ["lanh_dao"], 2),
    ("chanhvanphong", "Lý Thị Hoa", "VP", "Chánh Văn phòng", ["lanh_dao_don_vi"], 1),
    ("vanthu", "Võ Thị Giang", "VP", "Văn thư", ["van_thu"], 1),
    ("luutru", "Đặng Văn Hùng", "VP", "Lưu trữ viên", ["luu_tru"], 1),
    ("truongphong", "Lê Văn Cường", "QLTM", "Trưởng phòng", ["lanh_dao_don_vi"], 1),
    ("phophong", "Phạm Thị Dung", "QLTM", "Phó Trưởng phòng", ["cap_pho_don_vi"], 0),
    ("chuyenvien", "Hoàng Văn Em", "QLTM", "Chuyên viên", ["chuyen_vien"], 0),
    ("tp.khtc", "Bùi Minh Khoa", "KHTC", "Trưởng phòng", ["lanh_dao_don_vi"], 1),
    ("cv.khtc", "Ngô Thị Lan", "KHTC", "Chuyên viên", ["chuyen_vien"], 0),
    ("tp.qlcn", "Đỗ Quang Minh", "QLCN", "Trưởng phòng", ["lanh_dao_don_vi"], 1),
    ("cv.qlcn", "Phan Văn Nam", "QLCN", "Chuyên viên", ["chuyen_vien"], 0),
    ("chanhthanhtra", "Vũ Thị Oanh", "TTr", "Chánh Thanh tra", ["lanh_dao_don_vi"], 1),
]


def seed_reference() -> None:
    """Create roles, positions, document types and default workflows that are missing."""
    for code, name, otp, perms in ROLES:
        if not Role.objects(code=code).first():
            Role(code=code, name=name, require_otp=otp, permissions=perms).save()
    for name, level, order in POSITIONS:
        if not Position.objects(name=name).first():
            Position(name=name, level=level, order=order).save()
    for order, (name, abbr) in enumerate(DOCUMENT_TYPES):
        if not DocumentType.objects(name=name).first():
            DocumentType(name=name, abbreviation=abbr, order=order).save()
    from workflows.case_file import seed_retention_table  # also registers its workflow actions
    from workflows.workflow_definition import seed_definitions

    seed_retention_table()
    seed_definitions()


@functools.lru_cache(maxsize=1)
def _demo_password_hash() -> str:
    # One hash for the one public demo password keeps start-up fast.
    return hash_password(DEMO_PASSWORD)


def seed_demo() -> None:
    """Create the demo agency (Sở Công Thương tỉnh Đồng Nai) and one user per role."""
    seed_reference()
    if Agency.objects.first() is None:
        Agency(
            name="Sở Công Thương tỉnh Đồng Nai",
            abbreviation="SCT",
            parent_name="UBND TỈNH ĐỒNG NAI",
            organ_id="000.00.19.H19",
            address="Số 2 Nguyễn Văn Trị, phường Thanh Bình, TP. Biên Hòa, tỉnh Đồng Nai",
            place="Đồng Nai",
            phone="0251 3822 453",
            email="sct@dongnai.gov.vn",
        ).save()
    units = {}
    for order, (name, abbr, kind) in enumerate(UNITS):
        unit = (
            Unit.objects(abbreviation=abbr).first()
            or Unit(name=name, abbreviation=abbr, kind=kind, order=order).save()
        )
        units[abbr] = unit
    demo = current_app.config["DEMO_MODE"]
    for username, full_name, unit_abbr, position, roles, clearance in DEMO_USERS:
        if User.objects(username=username).first():
            continue
        User(
            username=username,
            full_name=full_name,
            email=f"{username}@sct.dongnai.example",
            unit=units[unit_abbr],
            position=Position.objects.get(name=position),
            roles=list(Role.objects(code__in=roles)),
            clearance=clearance,
            password_hash=_demo_password_hash(),
            is_demo_account=True,
            must_change_password=not demo,
        ).save()
    seed_register_books()
    if not current_app.config["TESTING"]:  # a key pair per person: too slow for every test
        from workflows.signing_demo import seed_demo_signing

        seed_demo_signing()
    from workflows.case_file import seed_demo_case_files

    seed_demo_case_files()
    log.info("demo data ready")
