"""End to end in Chromium: the clerk registers an incoming PDF, the leader assigns it, the
handler completes it, and the incoming register PDF lists it."""

import subprocess

import pytest

from tests.e2e.conftest import login
from tests.fixtures.files.samples import pdf_bytes

pytestmark = pytest.mark.e2e


def test_incoming_document_from_registration_to_the_register(browser, live_server, tmp_path):
    clerk = browser.new_context(base_url=live_server, accept_downloads=True).new_page()
    login(clerk, "vanthu")
    clerk.goto("/documents/")
    clerk.click("#new-incoming")
    clerk.select_option("#doc_type", label="Công văn")
    clerk.fill("#notation", "1234/UBND-KTN")
    clerk.fill("#issuer", "UBND tỉnh Đồng Nai")
    clerk.fill("#issued_on", "2026-11-18")
    clerk.fill("#subject", "V/v kiểm tra an toàn thực phẩm dịp Tết Nguyên đán")
    scan = tmp_path / "cong-van-den.pdf"
    scan.write_bytes(pdf_bytes())
    clerk.set_input_files("#main_file", str(scan))
    clerk.click("#document-submit")
    clerk.get_by_text("Đã vào sổ văn bản đến, số đến").wait_for()
    arrival = clerk.locator("#arrival-number").inner_text().split()[0]
    assert clerk.locator("iframe[title='Xem trước văn bản']").count() == 1
    clerk.select_option("select[name='leader']", label="Nguyễn Văn An – Giám đốc")
    clerk.get_by_role("button", name="Trình lãnh đạo").click()
    assert clerk.locator("#doc-state").inner_text() == "Chờ lãnh đạo phân công"
    doc_url = clerk.url

    leader = browser.new_context(base_url=live_server).new_page()
    login(leader, "giamdoc")
    leader.goto("/documents/?tab=inbox")
    leader.get_by_role("link", name="V/v kiểm tra an toàn thực phẩm dịp Tết Nguyên đán").click()
    form = leader.locator("form.transition-form[data-code='assign']")
    form.locator("select[name='assign_lead']").select_option(label="Hoàng Văn Em (QLTM)")
    form.locator("input[name='assign_deadline']").fill("2099-12-31")
    form.get_by_role("button", name="Phân công xử lý").click()
    assert leader.locator("#doc-state").inner_text() == "Đang xử lý"

    handler = browser.new_context(base_url=live_server).new_page()
    login(handler, "chuyenvien")
    handler.goto(doc_url)
    handler.fill("textarea[name='report']", "Đã kiểm tra, báo cáo kết quả.")
    handler.get_by_role("button", name="Báo cáo hoàn thành").click()
    assert handler.locator("#doc-state").inner_text() == "Đã hoàn thành"
    assert "Hoàng Văn Em: Báo cáo hoàn thành" in handler.locator("#history").inner_text()

    clerk.goto("/register-report/")
    clerk.select_option("#kind", "incoming")
    with clerk.expect_download() as download:
        clerk.click("#pdf")
    path = tmp_path / "so-den.pdf"
    download.value.save_as(path)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "1234/UBND-KTN" in text
    assert arrival in text
