"""VănThư application factory and CLI registration."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from typing import Any

from flask import Flask

log = logging.getLogger("vanthu")


class DefaultConfig:
    """Defaults; the environment and create_app(config=...) override them."""

    APP_NAME = "VănThư"
    SECRET_KEY: str | None = None
    # Production sets MONGODB_URI and REDIS_URL; without them the portal runs embedded.
    MONGODB_URI: str | None = None
    MONGODB_DB = "vanthu"
    REDIS_URL: str | None = None
    DEMO_MODE: bool | None = None  # None: demo when embedded
    SEED_DEMO_ON_START: bool | None = None  # None: when embedded
    DATA_DIR: str | None = None  # search index and other server-side files
    MASTER_KEY: str | None = None  # encrypts signing keys at rest

    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE: bool | None = None  # None: secure unless demo mode
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    MAX_CONTENT_LENGTH = 60 * 1024 * 1024
    UPLOAD_MAX_BYTES = 50 * 1024 * 1024

    LOGIN_MAX_FAILURES = 5  # per account, then a temporary lock
    LOGIN_LOCK_MINUTES = 15
    LOGIN_IP_MAX_FAILURES = 30  # per client address within LOGIN_IP_WINDOW_SECONDS
    LOGIN_IP_WINDOW_SECONDS = 600
    OTP_PENDING_SECONDS = 300
    API_TOKEN_TTL_HOURS = 12
    JOB_RESULT_TTL_SECONDS = 7 * 24 * 3600
    CONVERSION_TIMEOUT_SECONDS = 120
    SOFFICE_BINARY: str | None = None  # None: soffice/libreoffice on PATH
    LEGACY_IMPORT_ROOTS: list[str] = []  # server folders exports may be imported from
    LEGACY_IMPORT_MAX_UPLOAD_BYTES = 4 * 1024**3  # export .zip uploaded from the screen

    BENCH_DOCUMENTS = 0  # embedded benchmarks: bulk documents seeded at start
    SEARCH_AUTO_INDEX = True  # every document save queues its index update
    SEARCH_INDEX_PROCS = 1  # processes analysing bulk index writes (the legacy import)

    TESTING = False


class TestingConfig(DefaultConfig):
    """Configuration the test-suite uses."""

    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
    MASTER_KEY = "test-master-key-not-for-production"
    DEMO_MODE = True
    SEED_DEMO_ON_START = False
    MONGODB_DB = "vanthu_test"
    SESSION_COOKIE_SECURE = False
    SEARCH_AUTO_INDEX = False  # search tests turn it on; others need no index


def _load_environment(app: Flask) -> None:
    for key in ("MONGODB_URI", "REDIS_URL", "SECRET_KEY", "MASTER_KEY", "DATA_DIR"):
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    app.config.from_prefixed_env("VANTHU")


def _finish_config(app: Flask) -> None:
    cfg = app.config
    embedded = not cfg["MONGODB_URI"]
    cfg["EMBEDDED"] = embedded
    if cfg["DEMO_MODE"] is None:
        cfg["DEMO_MODE"] = embedded
    if cfg["SEED_DEMO_ON_START"] is None:
        cfg["SEED_DEMO_ON_START"] = embedded and not cfg["TESTING"]
    if cfg["SESSION_COOKIE_SECURE"] is None:
        cfg["SESSION_COOKIE_SECURE"] = not cfg["DEMO_MODE"]
    if not cfg["SECRET_KEY"]:
        if not embedded:
            raise RuntimeError("SECRET_KEY must be set in production (MONGODB_URI given)")
        # Embedded data lives in memory, so per-process session keys lose nothing.
        cfg["SECRET_KEY"] = secrets.token_urlsafe(32)
    if not cfg["MASTER_KEY"]:
        if not embedded:
            raise RuntimeError("MASTER_KEY must be set in production (MONGODB_URI given)")
        cfg["MASTER_KEY"] = secrets.token_urlsafe(32)
    if not cfg["DATA_DIR"]:
        cfg["DATA_DIR"] = tempfile.mkdtemp(prefix="vanthu-") if embedded else "var"
    os.makedirs(cfg["DATA_DIR"], exist_ok=True)


def create_app(config: dict[str, Any] | type | None = None) -> Flask:
    """Build the portal: defaults, then environment, then explicit overrides."""
    app = Flask(
        __name__,
        template_folder="views/templates",
        static_folder="views/static",
    )
    app.config.from_object(DefaultConfig)
    _load_environment(app)
    if isinstance(config, type):
        app.config.from_object(config)
    elif config:
        app.config.update(config)
    _finish_config(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    from jobs import init_jobs
    from models import init_db
    from views import init_views

    init_db(app)
    init_jobs(app)
    init_views(app)
    _register_cli(app)

    if app.config["SEED_DEMO_ON_START"]:
        from workflows.demo_documents import seed_demo_documents
        from workflows.seed import seed_demo

        with app.app_context():
            seed_demo()
            seed_demo_documents()
            if app.config["BENCH_DOCUMENTS"]:
                from workflows.demo_documents import seed_bulk_documents

                seed_bulk_documents(int(app.config["BENCH_DOCUMENTS"]))
    return app


def _register_cli(app: Flask) -> None:
    from jobs.cli import register_job_cli
    from workflows.cli import register_cli
    from workflows.legacy_import_cli import register_legacy_cli
    from workflows.signing_cli import register_signing_cli

    register_cli(app)
    register_job_cli(app)
    register_signing_cli(app)
    register_legacy_cli(app)
