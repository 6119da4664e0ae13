"""`flask --app app worker`: run RQ workers inside one app context."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from jobs import GENERAL_QUEUES, QUEUES


def register_job_cli(app: Flask) -> None:
    """Register the worker command."""

    @app.cli.command("worker")
    @click.option(
        "--queues",
        "-q",
        default=",".join(GENERAL_QUEUES),
        show_default=True,
        help="Comma-separated queues. Run exactly one worker for the `search` queue.",
    )
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
    @with_appcontext
    def worker(queues: str, burst: bool) -> None:
        """Run an RQ worker for the given queues."""
        from flask import current_app

        if current_app.config["EMBEDDED"]:
            raise click.ClickException(
                "Embedded mode keeps data in the portal's memory; jobs run inside the portal. "
                "Set MONGODB_URI and REDIS_URL to run separate workers."
            )
        names = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(names) - set(QUEUES))
        if unknown:
            raise click.BadParameter(f"unknown queues: {', '.join(unknown)}")
        from jobs.worker import run_worker

        run_worker(names, burst=burst)

    @app.cli.command("scheduler")
    @with_appcontext
    def scheduler() -> None:
        """Enqueue periodic jobs (reminders, deadlines, escalations); run exactly one."""
        from flask import current_app

        from jobs.scheduler import run_scheduler

        run_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
