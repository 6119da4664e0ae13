"""End to end in Chromium: a records manager searches without diacritics and opens a migrated
document from the hits."""

import pytest

from models.document import Document
from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_records_manager_finds_a_migrated_document_typed_without_diacritics(app, page, run_jobs):
    migrated = Document(
        direction="incoming",
        migrated=True,
        legacy_id="488397-VBĐT",
        legacy_system="VNPT iOffice",
        notation="1532/QĐ-UBND",
        issuer="UBND tỉnh Đồng Nai",
        state="migrated",
        closed=True,
        doc_type_name="Quyết định",
        status_text="Đã hoàn thành",
        subject="Quyết định phê duyệt kế hoạch phát triển thương mại điện tử năm 2019",
    ).save()
    Document(
        direction="incoming",
        migrated=True,
        legacy_id="488398-VBĐT",
        state="migrated",
        closed=True,
        subject="Báo cáo tình hình xuất nhập khẩu",
        issuer="Bộ Công Thương",
    ).save()
    from jobs.search import rebuild

    rebuild()
    login(page, "luutru")
    page.goto("/search/")
    page.fill("#search-q", "quyet dinh phe duyet")
    page.click("#search-submit")
    assert page.locator("#search-total").inner_text().startswith("1 ")
    hit = page.locator(".search-hit").first
    assert "488397-VBĐT" in hit.inner_text()
    assert "<mark>" in hit.inner_html() or "mark" in hit.inner_html()
    hit.get_by_role("link").first.click()
    page.locator("#migrated-notice").wait_for()
    assert "488397-VBĐT" in page.locator("#legacy-id").inner_text()
    assert page.locator(".transition-form").count() == 0  # read-only
    assert page.get_by_role("link", name="Sửa thông tin").count() == 0
    assert str(migrated.pk) in page.url
