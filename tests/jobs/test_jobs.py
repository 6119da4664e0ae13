from jobs import enqueue, fetch_job
from tests.conftest import api_token
from tests.jobs.sample import count_to, fail_with_message


def test_job_runs_on_a_real_worker_and_reports_progress(client, users, run_jobs):
    owner = users["chuyenvien"]
    job = enqueue(count_to, 3, job_id="count-3", owner_id=str(owner.pk))
    token = api_token(client, "chuyenvien")
    queued = client.get(f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {token}"})
    assert queued.json == {"id": "count-3", "status": "queued", "progress": {"done": 0, "total": 0}}
    assert run_jobs()
    done = client.get(f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {token}"})
    assert done.json == {
        "id": "count-3",
        "status": "finished",
        "progress": {"done": 3, "total": 3},
        "result": {"counted": 3},
    }


def test_same_job_id_is_not_enqueued_twice(users, run_jobs):
    first = enqueue(count_to, 2, job_id="double-click")
    second = enqueue(count_to, 2, job_id="double-click")
    assert first.id == second.id
    from jobs import get_queue

    assert get_queue("default").count == 1
    run_jobs()
    assert enqueue(count_to, 2, job_id="double-click").get_status() == "finished"


def test_failed_job_shows_its_message_not_a_traceback(client, users, run_jobs):
    job = enqueue(fail_with_message, owner_id=str(users["admin"].pk))
    run_jobs()
    token = api_token(client, "admin")
    body = client.get(f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {token}"}).json
    assert body["status"] == "failed"
    assert body["error"] == "Tệp bị hỏng, không thể xử lý."
    assert "Traceback" not in str(body)


def test_other_users_cannot_see_a_job(client, users, run_jobs):
    job = enqueue(count_to, 1, owner_id=str(users["chuyenvien"].pk))
    token = api_token(client, "cv.khtc")
    response = client.get(f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert fetch_job(job.id) is not None
