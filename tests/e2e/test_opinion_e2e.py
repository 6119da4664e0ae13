"""End to end in Chromium: Văn phòng Sở asks three units for an opinion due in two hours."""

import datetime as dt
import subprocess

import pytest

from jobs.reminders import run_opinion_deadlines
from models.audit import utcnow
from models.delegation import Delegation
from models.notification import Notification
from models.opinion import OpinionRequest, aware
from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e
VN = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture
def open_as(browser, live_server):
    contexts = []

    def open_page(username):
        context = browser.new_context(base_url=live_server, locale="vi-VN")
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        login(page, username)
        return page

    yield open_page
    for context in contexts:
        context.close()


def answer(page, subject, choice, comment):
    page.goto("/opinions/")
    page.get_by_role("link", name=subject).click()
    form = page.locator("form.answer-form").first
    form.get_by_label(choice, exact=True).check()
    form.locator("textarea[name=comment]").fill(comment)
    form.get_by_role("button", name="Gửi ý kiến").click()
    page.get_by_text("Đã ghi nhận ý kiến.").wait_for()


def test_three_units_two_answer_one_by_a_deputy_and_the_deadline_closes(
    open_as, users, units, tmp_path
):
    subject = "Góp ý dự thảo Kế hoạch kiểm tra an toàn thực phẩm dịp Tết"
    now = utcnow()
    Delegation(
        principal=users["truongphong"],
        delegate=users["phophong"],
        scopes=["process"],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=1),
        reason="Trưởng phòng đi công tác",
    ).save()

    office = open_as("chanhvanphong")
    office.goto("/opinions/new")
    office.fill("#subject", subject)
    office.fill("#content", "Đề nghị các phòng cho ý kiến trước hạn.")
    office.select_option("#recipients", [f"unit:{units[u].pk}" for u in ("KHTC", "QLCN", "QLTM")])
    due = (now + dt.timedelta(hours=2)).astimezone(VN).strftime("%Y-%m-%dT%H:%M")
    office.fill("#deadline", due)
    office.click("#opinion-submit")
    office.get_by_text("Đã gửi lấy ý kiến.").wait_for()
    assert office.inner_text("#opinion-state") == "Đang lấy ý kiến"
    req = OpinionRequest.objects.get(subject=subject)

    answer(open_as("tp.khtc"), subject, "Đồng ý", "Phòng KHTC thống nhất với dự thảo.")

    deputy = open_as("phophong")
    deputy.goto("/opinions/")
    assert "chờ ý kiến (thay Lê Văn Cường)" in deputy.inner_text("#opinion-list")
    answer(deputy, subject, "Không đồng ý", "Đề nghị lùi thời gian kiểm tra sau Tết.")
    row = deputy.locator(f"#answers tr[data-key='unit:{units['QLTM'].pk}']").inner_text()
    assert "Phạm Thị Dung thay Lê Văn Cường" in row and "Không đồng ý" in row

    # The periodic job, driven with the clock of the deadline (the server shares the process).
    deadline = aware(OpinionRequest.objects.get(pk=req.pk).deadline_at)
    reminded = run_opinion_deadlines((deadline - dt.timedelta(minutes=29)).isoformat())
    assert reminded["reminders"] >= 1
    assert Notification.objects(user_id=str(users["tp.qlcn"].pk), kind="due_soon").count() == 1
    assert run_opinion_deadlines(deadline.isoformat())["closed"] == [str(req.pk)]

    office.reload()
    assert office.inner_text("#opinion-state") == "Đã kết thúc"
    assert office.locator("form.answer-form").count() == 0
    office.click("#open-summary")
    table = office.inner_text("#summary-table")
    assert "Không có ý kiến (quá hạn)" in table and "Phòng Quản lý Công nghiệp" in table
    with office.expect_download() as download:
        office.click("#summary-pdf")
    pdf = tmp_path / "tong-hop.pdf"
    download.value.save_as(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    rows = {
        unit: next(line for line in text.splitlines() if unit in line)
        for unit in (
            "Phòng Kế hoạch - Tài chính",
            "Phòng Quản lý Công nghiệp",
            "Phòng Quản lý Thương mại",
        )
    }
    assert "Đồng ý" in rows["Phòng Kế hoạch - Tài chính"]
    assert "Không có ý kiến (quá hạn)" in rows["Phòng Quản lý Công nghiệp"]
    assert "Phạm Thị Dung thay Lê Văn Cường" in rows["Phòng Quản lý Thương mại"]
    assert text.count("Không có ý kiến (quá hạn)") == 1
    assert "chưa cho ý kiến: Phòng Quản lý Công nghiệp." in " ".join(text.split())
