"""`flask --app app legacy ...`: import, resume, purge and report legacy exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

EMBEDDED_MESSAGE = (
    "Chế độ nhúng (không có MONGODB_URI): cơ sở dữ liệu nằm trong bộ nhớ của cổng thông tin, "
    "lệnh này chạy ở tiến trình khác nên không ghi vào đó được. Hãy nhập từ màn hình "
    "'Chuyển đổi dữ liệu' của cổng, hoặc đặt MONGODB_URI và REDIS_URL để chạy bằng dòng lệnh."
)


def _refuse_embedded() -> None:
    if current_app.config["EMBEDDED"]:
        raise click.ClickException(EMBEDDED_MESSAGE)


class _Bar:
    """A click progress bar fed by the importer's progress callback."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.shown = 0

    def __call__(self, progress: dict[str, Any]) -> None:
        total = max(int(progress.get("total") or 0), 1)
        if self.bar is None:
            self.bar = click.progressbar(
                length=total, label="Chuyển đổi", file=sys.stderr, show_eta=True, width=30
            )
            self.bar.__enter__()
        self.bar.length = total
        done = int(progress.get("done") or 0)
        files = progress.get("files") or {}
        self.bar.label = f"{progress.get('phase', '')}: tệp {files.get('done', 0)}, " \
                         f"{progress.get('rate', 0)} dòng/giây"  # fmt: skip
        self.bar.update(max(0, done - self.shown))
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            click.echo("", err=True)


def _run(batch_id: str, force: bool = False) -> None:
    from workflows import legacy_import

    bar = _Bar()
    try:
        report = legacy_import.run_batch(batch_id, progress=bar, force=force)
    except Exception as exc:
        bar.close()
        batch = legacy_import.get_batch(batch_id)
        click.echo(json.dumps(legacy_import.batch_report(batch), ensure_ascii=False, indent=1))
        message = getattr(exc, "message", None) or batch.error or str(exc)
        raise click.ClickException(
            f"{message} Chạy tiếp: flask --app app legacy resume {batch_id}"
        ) from exc
    bar.close()
    click.echo(json.dumps(report, ensure_ascii=False, indent=1))


def register_legacy_cli(app: Flask) -> None:
    """Register the `legacy` command group."""

    @app.cli.group("legacy")
    def legacy() -> None:
        """Chuyển đổi dữ liệu từ hệ thống QLVB cũ."""

    @legacy.command("import")
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.option("--mapping", "mapping_file", type=click.Path(exists=True, path_type=Path),
                  help="Tệp ánh xạ cột (YAML/JSON); mặc định: LEGACY_EXPORT v1.")  # fmt: skip
    @click.option("--user", "username", help="Ghi lô dưới tên người dùng này.")
    @with_appcontext
    def import_command(path: Path, mapping_file: Path | None, username: str | None) -> None:
        """Import an export folder or .zip; print the report as JSON."""
        _refuse_embedded()
        from models.user import User
        from workflows import legacy_import
        from workflows.legacy import MappingError, load_mapping

        try:
            mapping = load_mapping(mapping_file)
        except MappingError as exc:
            raise click.ClickException(str(exc)) from exc
        user = User.objects(username=username).first() if username else None
        if username and user is None:
            raise click.ClickException(f"Không có người dùng '{username}'.")
        batch = legacy_import.create_batch(
            path.resolve(), kind="cli", name=str(path), mapping=mapping,
            mapping_name=mapping_file.name if mapping_file else mapping.name, user=user,
        )  # fmt: skip
        click.echo(f"Lô {batch.pk}", err=True)
        _run(str(batch.pk))

    @legacy.command("resume")
    @click.argument("batch_id")
    @click.option("--force", is_flag=True, help="Chiếm lô dù tiến trình cũ có vẻ còn chạy.")
    @with_appcontext
    def resume_command(batch_id: str, force: bool) -> None:
        """Continue a stopped batch from its checkpoints."""
        _refuse_embedded()
        _run(batch_id, force=force)

    @legacy.command("purge")
    @click.argument("batch_id")
    @click.option("--yes", is_flag=True, help="Không hỏi lại.")
    @with_appcontext
    def purge_command(batch_id: str, yes: bool) -> None:
        """Delete every document and file a batch imported."""
        _refuse_embedded()
        from workflows import legacy_import

        if not yes:
            click.confirm(f"Xóa toàn bộ văn bản và tệp của lô {batch_id}?", abort=True)
        legacy_import.request_purge(batch_id, None)
        counts = legacy_import.purge_batch(batch_id, "Dòng lệnh (CLI)")
        click.echo(json.dumps(counts, ensure_ascii=False))

    @legacy.command("report")
    @click.argument("batch_id")
    @with_appcontext
    def report_command(batch_id: str) -> None:
        """Print a batch's report as JSON."""
        _refuse_embedded()
        from workflows import legacy_import

        report = legacy_import.batch_report(legacy_import.get_batch(batch_id))
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
