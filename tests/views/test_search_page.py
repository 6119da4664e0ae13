"""The search page: facets and filters named in Vietnamese, case files among the hits."""

import pytest

from tests.conftest import web_login
from tests.workflows.test_case_file import closed_file, finished_incoming, migrated_document

pytestmark = pytest.mark.usefixtures("search_auto_index")


def test_records_manager_finds_a_case_file_and_filters_its_documents(
    client, make_document, users, units, run_jobs
):
    doc = finished_incoming(make_document, users, subject="Kiểm tra thị trường dịp Tết")
    migrated = migrated_document(units)
    case_file = closed_file(users["chuyenvien"], [doc, migrated])
    run_jobs(("search",))
    web_login(client, "luutru")

    page = client.get("/search/", query_string={"q": "thi truong"}).text
    assert f'href="/case-files/{case_file.pk}"' in page  # the file opens on its own page
    assert f'href="/document/{doc.pk}"' in page or f"/{doc.pk}" in page
    assert "Thời hạn bảo quản" in page and "15 năm" in page
    assert "Chưa nộp lưu" in page and "Hồ sơ lưu trữ" in page
    assert "Dữ liệu chuyển đổi" in page and "Đã kết thúc" in page

    filtered = client.get("/search/", query_string={"q": "", "case_file": str(case_file.pk)})
    assert filtered.status_code == 200
    assert "3 kết quả" in filtered.text
    assert f"Hồ sơ: 15.QLTM – {case_file.title}" in filtered.text  # the active filter, named
    assert str(migrated.pk) in filtered.text

    pending = client.get("/search/", query_string={"transfer": "transferred"})
    assert "0 kết quả" in pending.text and "Nộp lưu: Đã nộp lưu" in pending.text


def test_the_search_page_refuses_bad_filters_clearly(client, users, run_jobs):
    web_login(client, "luutru")
    response = client.get("/search/", query_string={"q": "a" * 5000, "year": "không phải năm"})
    assert response.status_code == 200
