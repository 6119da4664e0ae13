"""End to end in Chromium: an admin changes the outgoing workflow without code; documents
in flight keep their version; a deputy with a delegation initials for the unit head."""

import threading

import pytest

from models.document import Document
from tests.e2e.conftest import login
from tests.e2e.test_signing_e2e import _work
from tests.fixtures.files.samples import pdf_bytes
from tests.workflows import test_signature as shared
from workflows import signing_identity, signing_run

pytestmark = pytest.mark.e2e
fast_pin_hash, sig_pki = shared.fast_pin_hash, shared.sig_pki


def test_admin_adds_a_step_and_a_deputy_initials_for_the_head(
    app, browser, live_server, make_document, users, tmp_path, sig_pki
):
    # The deputy initials digitally with a key of her own (PIN), for the head.
    signing_identity.create_pkcs12_identity(
        sig_pki.p12("deputy"), shared.PASSPHRASE, owner=users["phophong"], pin=shared.PIN
    )
    old = make_document(
        "outgoing",
        "chuyenvien",
        signer=users["giamdoc"],
        subject="V/v dự thảo cũ trước khi đổi quy trình",
    )
    signing_run.attach_pdf(old, pdf_bytes(), "du-thao-cu.pdf", users["chuyenvien"])

    admin = browser.new_context(base_url=live_server).new_page()
    login(admin, "admin")
    admin.get_by_role("link", name="Hệ thống", exact=True).click()
    admin.get_by_role("link", name="Quy trình xử lý").click()
    admin.get_by_role("link", name="Phát hành văn bản đi").click()
    # A new state...
    admin.locator("#add-state summary").click()
    admin.fill("#state-code", "legal_review")
    admin.fill("#state-label", "Pháp chế thẩm định")
    admin.get_by_label("Quan hệ: Lãnh đạo đơn vị soạn thảo").first.check()
    admin.click("#save-state")
    admin.get_by_text("Đã lưu trạng thái 'Pháp chế thẩm định'.").wait_for()
    assert "không thể tới được" in admin.locator("#problems").inner_text()
    # ...that "Trình duyệt" now leads to, and a transition out of it.
    row = admin.locator("#transitions-table tr", has_text="submit")
    with admin.expect_navigation():
        row.get_by_role("link", name="Sửa").click()
    assert admin.locator("#tr-code").input_value() == "submit"
    admin.select_option("#tr-to_state", "legal_review")
    admin.locator("#add-transition").get_by_label(
        "Trình ký nháy (bắt đầu luồng trình ký)"
    ).uncheck()
    admin.click("#save-transition")
    admin.get_by_text("Đã lưu bước chuyển 'Trình duyệt'.").wait_for()
    admin.locator("#add-transition summary").click()
    admin.fill("#tr-code", "legal_ok")
    admin.fill("#tr-label", "Thẩm định xong")
    form = admin.locator("#add-transition")
    form.locator("input[name='tr-from_states'][value='legal_review']").check()
    admin.select_option("#tr-to_state", "review")
    form.locator("input[name='tr-who'][value='relation:drafting_unit_head']").check()
    admin.click("#save-transition")
    admin.get_by_text("Đã lưu bước chuyển 'Thẩm định xong'.").wait_for()
    assert admin.locator("#problems").count() == 0
    assert "Pháp chế thẩm định" in admin.locator(".workflow-graph").inner_html()
    admin.click("#publish-button")
    admin.get_by_text("Đã ban hành phiên bản 2.").wait_for()

    # A new draft, made in the portal, follows version 2.
    drafter = browser.new_context(base_url=live_server).new_page()
    login(drafter, "chuyenvien")
    drafter.goto("/documents/new/outgoing")
    drafter.select_option("#doc_type", label="Công văn")
    drafter.fill("#subject", "V/v dự thảo mới theo quy trình có pháp chế")
    drafter.select_option("#signer", label="Nguyễn Văn An – Giám đốc")
    pdf = tmp_path / "du-thao.pdf"
    pdf.write_bytes(pdf_bytes())
    drafter.set_input_files("#main_file", str(pdf))
    drafter.click("#document-submit")
    drafter.get_by_text("Đã tạo dự thảo.").wait_for()
    drafter.get_by_role("button", name="Trình duyệt").click()
    assert drafter.locator("#doc-state").inner_text() == "Pháp chế thẩm định"
    # The draft started before follows version 1.
    drafter.goto(f"/documents/{old.pk}")
    drafter.get_by_role("button", name="Trình duyệt").click()
    assert drafter.locator("#doc-state").inner_text() == "Trình ký nháy"

    # The head delegates initials to the deputy, who initials on his behalf.
    head = browser.new_context(base_url=live_server).new_page()
    login(head, "truongphong")
    head.goto("/delegations/")
    head.select_option("#delegate", label="Phạm Thị Dung – Phó Trưởng phòng")
    head.check("#scope-initial")
    head.fill("#ends_at", "2099-12-31T17:00")
    head.fill("#reason", "Đi công tác")
    head.click("#delegation-submit")
    head.get_by_text("Đã ghi nhận ủy quyền.").wait_for()

    deputy = browser.new_context(base_url=live_server).new_page()
    login(deputy, "phophong")
    deputy.goto("/documents/?tab=inbox")
    deputy.get_by_role("link", name="V/v dự thảo cũ trước khi đổi quy trình").click()
    doc_url = deputy.url
    deputy.fill("#sign-code", shared.PIN)
    deputy.click("#sign-submit")
    deputy.wait_for_url("**/signatures/jobs/**")
    worker = threading.Thread(target=_work, args=(app,))  # Playwright's loop runs here
    worker.start()
    worker.join(timeout=120)
    deputy.goto(doc_url)
    assert deputy.locator("#doc-state").inner_text() == "Chờ lãnh đạo ký ban hành"
    assert "Phạm Thị Dung thay Lê Văn Cường: Ký nháy" in deputy.locator("#history").inner_text()
    assert Document.objects.get(pk=old.pk).current_pdf.kind == "initialed"
    assert Document.objects.get(pk=old.pk).workflow_version == 1
