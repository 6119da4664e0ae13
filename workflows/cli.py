"""Administrative CLI commands."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def register_cli(app: Flask) -> None:
    """Register `seed` and `serve`."""

    @app.cli.command("seed")
    @click.option("--demo", is_flag=True, help="Also create the demo agency and accounts.")
    @with_appcontext
    def seed(demo: bool) -> None:
        """Create reference data (roles, positions, document types)."""
        from workflows.demo_documents import seed_demo_documents
        from workflows.seed import seed_demo, seed_reference

        if demo:
            seed_demo()
            seed_demo_documents()
        else:
            seed_reference()
        click.echo("seeded" + (" with demo data" if demo else ""))

    search = click.Group("search", help="Archive search index.")
    app.cli.add_command(search)

    @search.command("rebuild")
    @click.option("--full", is_flag=True, help="Start from an empty index instead of resuming.")
    @with_appcontext
    def search_rebuild(full: bool) -> None:
        """Index every document (resumable: current records are skipped)."""
        from jobs.search import rebuild

        click.echo(rebuild(resume=not full))

    @search.command("check")
    @with_appcontext
    def search_check() -> None:
        """Report documents missing from or stale in the index; exit 1 if any."""
        import json

        from jobs.search import current_versions
        from search_index.writer import check, open_or_create
        from workflows.search import index_path

        open_or_create(index_path())
        drift = check(index_path(), current_versions())
        click.echo(
            json.dumps(
                {
                    "missing": len(drift.missing),
                    "stale": len(drift.stale),
                    "extra": len(drift.extra),
                    "sample": (drift.missing + drift.stale + drift.extra)[:20],
                }
            )
        )
        if not drift.clean:
            raise SystemExit(1)

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    @click.option("--threads", default=8, show_default=True, type=int)
    @with_appcontext
    def serve(host: str, port: int, threads: int) -> None:
        """Serve the portal with waitress (one process: required by embedded mode)."""
        from waitress import serve as waitress_serve

        app_obj = current_app._get_current_object()  # type: ignore[attr-defined]
        if app_obj.config["JOBS_INPROCESS"]:
            from jobs.scheduler import ensure_inprocess_scheduler
            from jobs.worker import ensure_inprocess_worker

            ensure_inprocess_worker(app_obj)
            ensure_inprocess_scheduler(app_obj)
        click.echo(f"VănThư: http://{host}:{port}/")
        waitress_serve(app_obj, host=host, port=port, threads=threads, ident="VanThu")
