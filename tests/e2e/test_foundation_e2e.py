"""End to end in Chromium: log in, open the admin, create a unit, see it listed."""

import pytest

from models.organization import Unit
from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_admin_creates_a_unit_in_the_vietnamese_ui(page):
    page.goto("/")
    assert "/auth/login" in page.url
    assert page.get_by_role("button", name="Đăng nhập").is_visible()
    page.fill("#username", "admin")
    page.fill("#password", "sai mật khẩu")
    page.click("#login-submit")
    assert page.get_by_text("Tên đăng nhập hoặc mật khẩu không đúng.").is_visible()

    login(page, "admin")
    assert page.get_by_text("Xin chào Quản trị Hệ thống").first.is_visible()
    page.get_by_role("link", name="Tổ chức").click()
    page.get_by_role("link", name="Đơn vị").click()
    page.wait_for_url("**/unit/")
    page.get_by_role("link", name="Tạo").click()
    page.fill("#name", "Trung tâm Khuyến công")
    page.fill("#abbreviation", "TTKC")
    page.select_option("#kind", "subsidiary")
    page.get_by_role("button", name="Lưu", exact=True).click()
    page.get_by_text("Đã tạo thành công.").wait_for()
    row = page.locator("table.model-list tr", has_text="Trung tâm Khuyến công")
    assert row.count() == 1
    assert "TTKC" in row.inner_text()
    assert "Đơn vị trực thuộc" in row.inner_text()
    assert Unit.objects.get(abbreviation="TTKC").kind == "subsidiary"


def test_specialist_does_not_see_admin_screens(page):
    login(page, "chuyenvien")
    assert page.get_by_role("link", name="Tổ chức").count() == 0
    response = page.goto("/unit/")
    assert response.status == 403
    assert page.get_by_text("Không có quyền truy cập").is_visible()
