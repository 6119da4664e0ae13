"""Jobs used by the job-infrastructure tests."""

from __future__ import annotations

from jobs import report_progress


def count_to(n: int) -> dict[str, int]:
    """Report progress up to n and return the total."""
    for i in range(1, n + 1):
        report_progress(i, n)
    return {"counted": n}


def fail_with_message() -> None:
    """Fail the way jobs report a user-facing error."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    job.meta["error"] = "Tệp bị hỏng, không thể xử lý."
    job.save_meta()
    raise RuntimeError("broken input")
