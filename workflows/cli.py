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
