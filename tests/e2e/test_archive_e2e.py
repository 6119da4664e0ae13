"""End to end in Chromium: a specialist files documents, the records manager archives them."""

import pytest

from models.audit import AuditEntry
from models.case_file import CaseFile
from tests.e2e.conftest import login
from tests.workflows.test_case_file import finished_incoming, migrated_document

pytestmark = pytest.mark.e2e


@pytest.fixture
def other_page(browser, live_server):
    """A second browser context: another person at another desk."""
    context = browser.new_context(base_url=live_server, locale="vi-VN")
    context.set_default_timeout(15000)
    yield context.new_page()
    context.close()


def test_case_file_from_opening_to_the_agency_archive(
    page, other_page, make_document, users, units
):
    incoming = finished_incoming(make_document, users, notation="12/UBND-KT")
    migrated_document(units, legacy_id="488397-VBĐT", notation="35/BC-BCT")

    # The specialist opens the case file planned for them in this year's approved list.
    login(page, "chuyenvien")
    page.goto("/case-files/")
    page.click("#new-case-file")
    page.select_option(
        "#entry", page.locator("#entry option", has_text="07.QLTM").get_attribute("value")
    )
    page.click("#open-from-list-submit")
    page.get_by_text("Đã lập hồ sơ 07.QLTM.").wait_for()
    case_file = CaseFile.objects.get(code="07.QLTM")
    assert page.locator("#retention").inner_text() == "15 năm"

    # Attach an incoming document and a migrated one, found by number and by legacy id.
    for query, expected in (("12/UBND-KT", incoming.subject), ("488397", "35/BC-BCT")):
        page.fill("#document-query", query)
        page.get_by_role("button", name="Tìm văn bản").click()
        row = page.locator("#document-results tr", has_text=expected)
        row.locator(".attach-button").click()
        page.get_by_text("Đã đưa văn bản vào hồ sơ.").wait_for()
    table = page.locator("#case-file-documents").inner_text()
    assert "12/UBND-KT" in table and "35/BC-BCT" in table and "Dữ liệu chuyển đổi" in table

    page.click("#close-case-file")
    page.get_by_text("Đã kết thúc hồ sơ.").wait_for()
    assert "Chưa nộp lưu, hạn" in page.locator("#transfer-state").inner_text()
    assert page.locator("#document-search").count() == 0

    # The records manager sees it due for transfer and transfers it.
    specialist, page = page, other_page
    login(page, "luutru")
    page.goto("/archive/due")
    due_row = page.locator("#due-list tr[data-code='07.QLTM']")
    assert "Hồ sơ kiểm tra, kiểm soát thị trường" in due_row.inner_text()
    due_row.locator("input[type=checkbox]").check()
    page.click("#transfer-selected")
    page.get_by_text("Đã tiếp nhận nộp lưu").wait_for()
    assert page.locator("#due-list tr[data-code='07.QLTM']").count() == 0
    assert CaseFile.objects.get(pk=case_file.pk).state == "archived"

    # It is read-only now, and reading it leaves a trace in the access log.
    page.goto(f"/case-files/{case_file.pk}")
    assert page.locator("#frozen-notice").is_visible()
    for control in ("#document-search", "#close-case-file", "#reopen-case-file", "#edit-case-file"):
        assert page.locator(control).count() == 0, control
    assert page.get_by_role("button", name="Gỡ").count() == 0
    page.goto("/archive/access-log")
    assert "Xem hồ sơ" in page.locator("#access-log").inner_text()

    # The archive search finds the file by its title and lists what it holds.
    from jobs.search import rebuild

    rebuild()
    page.goto("/search/")
    page.fill("#search-q", "ho so kiem tra kiem soat thi truong")
    page.click("#search-submit")
    hit = page.locator(".search-hit", has_text="07.QLTM").first
    assert "Hồ sơ" in hit.inner_text()
    hit.get_by_text("Văn bản trong hồ sơ").click()
    page.locator("#search-total", has_text="3 kết quả").wait_for()
    assert "Hồ sơ: 07.QLTM" in page.locator("#active-filters").inner_text()
    assert "35/BC-BCT" in page.inner_text(".col-md-9")
    assert "Đã nộp lưu" in page.locator("#facets").inner_text()
    viewed = AuditEntry.objects(action="case_file.view", object_id=str(case_file.pk)).count()

    page = specialist
    page.goto(f"/case-files/{case_file.pk}")
    assert page.locator("#frozen-notice").is_visible()
    assert page.locator("#document-search").count() == 0
    page.goto(f"/documents/{incoming.pk}")
    assert page.locator("#add-to-case-file").count() == 0  # no open file left to add it to
    assert "đã nộp lưu" in page.locator("#holding-case-files").inner_text()
    assert len(CaseFile.objects.get(pk=case_file.pk).items) == 2
    after = AuditEntry.objects(action="case_file.view", object_id=str(case_file.pk)).count()
    assert viewed == 1 and after == 2  # searching is not a view of the file
