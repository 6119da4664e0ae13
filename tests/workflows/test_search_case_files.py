"""Case files in the archive search: found by title and code, their documents filtered by
file, retention and transfer state, re-indexed when filed or transferred, never drifting."""

import pytest

from tests.workflows.test_case_file import (
    closed_file,
    finished_incoming,
    migrated_document,
    open_adhoc,
)
from workflows import case_file as cf
from workflows.search import search_for

pytestmark = pytest.mark.usefixtures("search_auto_index")


def ids(result):
    return {h["id"] for h in result["hits"]}


def facet(result, name):
    return {f["value"]: f["count"] for f in result["facets"][name]}


def test_case_files_and_their_documents_are_searchable_with_archive_filters(
    make_document, users, units, run_jobs
):
    doc = finished_incoming(make_document, users, subject="Kiểm tra thị trường dịp Tết")
    migrated = migrated_document(units)
    case_file = closed_file(users["chuyenvien"], [doc, migrated])
    other = open_adhoc(users["chuyenvien"], code="16.QLTM", title="Hồ sơ an toàn thực phẩm")
    run_jobs(("search",))

    manager = users["luutru"]
    found = search_for(manager, "ho so kiem tra thi truong tet")
    assert found["hits"][0]["id"] == str(case_file.pk)
    assert found["hits"][0]["kind"] == "case_file"
    assert search_for(manager, "15.QLTM")["hits"][0]["id"] == str(case_file.pk)

    in_file = search_for(manager, "", filters={"case_file": [str(case_file.pk)]}, limit=50)
    assert ids(in_file) == {str(case_file.pk), str(doc.pk), str(migrated.pk)}
    assert facet(in_file, "kind") == {"case_file": 1, "document": 2}

    # Files of 5+ years are to be transferred, the open one included.
    pending = search_for(manager, "", filters={"transfer": ["pending"]}, limit=50)
    assert ids(pending) == {str(case_file.pk), str(doc.pk), str(migrated.pk), str(other.pk)}
    assert facet(pending, "retention") == {"15": 4}
    assert str(other.pk) in ids(search_for(manager, "an toàn thực phẩm"))

    cf.transfer_case_files(manager, [case_file.pk])
    run_jobs(("search",))
    transferred = search_for(manager, "", filters={"transfer": ["transferred"]}, limit=50)
    assert ids(transferred) == {str(case_file.pk), str(doc.pk), str(migrated.pk)}
    assert ids(search_for(manager, "", filters={"transfer": ["pending"]})) == {str(other.pk)}


def test_case_files_are_found_only_by_their_owners_and_records_managers(users, run_jobs):
    case_file = open_adhoc(users["chuyenvien"], title="Hồ sơ thanh tra xăng dầu")
    run_jobs(("search",))
    for name, expected in (
        ("chuyenvien", True),  # owner
        ("luutru", True),  # records manager
        ("cv.khtc", False),  # another unit
    ):
        hits = ids(search_for(users[name], "thanh tra xăng dầu"))
        assert (str(case_file.pk) in hits) is expected, name


def test_filing_and_unfiling_keep_the_index_consistent(make_document, users, runner, run_jobs):
    doc = finished_incoming(make_document, users, subject="Báo cáo quản lý thị trường")
    case_file = open_adhoc(users["chuyenvien"])
    run_jobs(("search",))
    assert runner.invoke(args=["search", "check"]).exit_code == 0

    cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    # Filing changes the document's tags, not the document: the check still sees it.
    assert runner.invoke(args=["search", "check"]).exit_code == 1
    run_jobs(("search",))
    assert runner.invoke(args=["search", "check"]).exit_code == 0
    manager = users["luutru"]
    filtered = search_for(manager, "báo cáo", filters={"case_file": [str(case_file.pk)]})
    assert ids(filtered) == {str(doc.pk)}

    cf.detach_document(users["chuyenvien"], case_file.pk, doc.pk)
    run_jobs(("search",))
    assert runner.invoke(args=["search", "check"]).exit_code == 0
    assert search_for(manager, "báo cáo", filters={"case_file": [str(case_file.pk)]})["total"] == 0


def test_rebuild_indexes_case_files(make_document, users, runner, app, run_jobs):
    app.config["SEARCH_AUTO_INDEX"] = False
    case_file = closed_file(users["chuyenvien"], [finished_incoming(make_document, users)])
    assert runner.invoke(args=["search", "check"]).exit_code == 1
    assert runner.invoke(args=["search", "rebuild"]).exit_code == 0
    assert runner.invoke(args=["search", "check"]).exit_code == 0
    hits = search_for(users["luutru"], "", filters={"kind": ["case_file"]})["hits"]
    assert [h["id"] for h in hits] == [str(case_file.pk)]
