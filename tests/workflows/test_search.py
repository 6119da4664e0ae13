"""Search integration: index updates through the single search worker, permissions inside
the query, and the consistency check."""

import pytest

from models.document import Document
from workflows import engine
from workflows.search import search_for

pytestmark = pytest.mark.usefixtures("search_auto_index")


def work(run_jobs):
    run_jobs(("search",))


def test_saved_documents_are_found_by_subject_number_and_without_diacritics(
    make_document, users, run_jobs
):
    doc = make_document(
        "incoming",
        "vanthu",
        issuer="UBND tỉnh Đồng Nai",
        notation="70/2018/NĐ-CP",
        subject="Quyết định phê duyệt quy hoạch phát triển chợ",
    )
    work(run_jobs)
    for query in ("phê duyệt quy hoạch", "phe duyet quy hoach", "70/2018/NĐ-CP", "70/2018/ND-CP"):
        result = search_for(users["vanthu"], query)
        assert result["total"] >= 1, query
        assert result["hits"][0]["id"] == str(doc.pk), query
    assert Document.objects.get(pk=doc.pk).index_status == "indexed"


def test_hits_totals_and_facets_follow_permissions(make_document, users, units, run_jobs):
    plain = make_document(
        "incoming",
        "vanthu",
        issuer="Bộ Công Thương",
        subject="Hướng dẫn kiểm tra thị trường xăng dầu",
    )
    secret = make_document(
        "incoming",
        "vanthu",
        issuer="Bộ Công Thương",
        secrecy=1,
        subject="Kiểm tra thị trường xăng dầu (mật)",
    )
    work(run_jobs)
    seen = {
        u: {h["id"] for h in search_for(users[u], "xăng dầu", limit=50)["hits"]}
        for u in ("giamdoc", "vanthu", "chuyenvien", "cv.khtc")
    }
    assert seen["giamdoc"] == {str(plain.pk), str(secret.pk)}
    assert seen["vanthu"] == {str(plain.pk), str(secret.pk)}
    assert seen["chuyenvien"] == set() and seen["cv.khtc"] == set()
    # Assigning the unit re-indexes the document for the unit's people; the secret one stays
    # out of their counts and facets.
    engine.transition(plain.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)})
    engine.transition(
        plain.pk,
        "assign",
        users["giamdoc"],
        {"assignees": [{"role": "lead", "unit": str(units["QLTM"].pk)}]},
    )
    work(run_jobs)
    result = search_for(users["chuyenvien"], "xăng dầu")
    assert result["total"] == 1, (result, str(plain.pk), str(secret.pk))
    assert result["hits"][0]["id"] == str(plain.pk)
    assert sum(f["count"] for f in result["facets"]["direction"]) == 1
    assert "mật" not in str(result)


def test_check_finds_nothing_missing_after_updates(make_document, users, runner, run_jobs):
    for i in range(5):
        make_document("incoming", "vanthu", issuer="Sở Tài chính", subject=f"Báo cáo số {i}")
    assert runner.invoke(args=["search", "check"]).exit_code == 1  # queued, not yet indexed
    work(run_jobs)
    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 0, result.output
    Document.objects.first().delete()
    work(run_jobs)
    assert runner.invoke(args=["search", "check"]).exit_code == 0


def test_rebuild_resumes_and_repairs_drift(make_document, users, runner, app, run_jobs):
    app.config["SEARCH_AUTO_INDEX"] = False
    docs = [
        make_document("incoming", "vanthu", issuer="Sở Y tế", subject=f"Công văn {i}")
        for i in range(3)
    ]
    assert runner.invoke(args=["search", "check"]).exit_code == 1
    result = runner.invoke(args=["search", "rebuild"])
    assert result.exit_code == 0 and "'indexed': 3" in result.output
    assert runner.invoke(args=["search", "rebuild"]).output.count("'indexed': 0") == 1
    assert search_for(users["vanthu"], "công văn")["total"] == len(docs)


def test_bad_queries_get_a_result_or_a_clear_message(client, make_document, run_jobs):
    from tests.conftest import api_token

    make_document("incoming", "vanthu", issuer="Sở Y tế", subject="Công văn hướng dẫn")
    work(run_jobs)
    auth = {"Authorization": f"Bearer {api_token(client, 'vanthu')}"}
    for q in ("", "!!!", "x" * 5000, '"không đóng', "field:abc", "*", "unknown:1 công văn"):
        response = client.get("/api/v1/search", query_string={"q": q}, headers=auth)
        assert response.status_code in (200, 400), (q, response.status_code)
        if response.status_code == 400:
            assert response.json["error"]["message"]
    response = client.get("/api/v1/search", query_string={"q": "công văn"}, headers=auth)
    assert response.json["total"] == 1
    assert set(response.json["hits"][0]) == {
        "id",
        "kind",
        "legacy_id",
        "number",
        "title",
        "score",
        "highlights",
    }
