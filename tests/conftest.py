"""Fixtures: a real redis-server, the app on mongomock (or TEST_MONGODB_URI), users, workers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from app import TestingConfig, create_app


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Start a real redis-server on a free loopback port for the session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.exit("redis-server is not installed: run the README's test command", 2)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="vanthu-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            Redis.from_url(url).ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context, as in production.

    The tests keep an app context pushed for direct model and workflow calls; without
    this, requests would reuse it and share `g` (and Flask-Login's cached user).
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        from flask.globals import _cv_app

        token = _cv_app.set(None)  # type: ignore[arg-type]
        try:
            return super().open(*args, **kwargs)
        finally:
            _cv_app.reset(token)


@pytest.fixture(scope="session")
def app(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application, configured for tests (mongomock unless TEST_MONGODB_URI is set)."""
    config = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    config.update(
        REDIS_URL=redis_url,
        MONGODB_URI=os.environ.get("TEST_MONGODB_URI") or None,
        MONGODB_DB=f"vanthu_test_{uuid.uuid4().hex[:8]}",
        DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    application = create_app(config)
    application.test_client_class = IsolatedClient
    ctx = application.app_context()
    ctx.push()
    yield application
    if config["MONGODB_URI"]:
        from mongoengine.connection import get_connection

        get_connection().drop_database(config["MONGODB_DB"])
    ctx.pop()


@pytest.fixture(autouse=True)
def clean_state(app: Flask) -> Iterator[None]:
    """Give every test an empty database and Redis, seeded with the demo agency."""
    from mongoengine.connection import get_db

    from jobs import redis_connection
    from workflows.seed import seed_demo

    db = get_db()
    for name in db.list_collection_names():
        if not name.startswith("system."):
            db[name].delete_many({})
    redis_connection().flushdb()
    shutil.rmtree(os.path.join(app.config["DATA_DIR"], "search-index"), ignore_errors=True)
    seed_demo()
    yield


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def users() -> dict[str, Any]:
    """Demo users by username (one per role; see workflows/seed.py)."""
    from models.user import User

    return {u.username: u for u in User.objects}


DEMO_PASSWORD = "VanThu@2026"


def csrf_token(html: str) -> str:
    """Extract the CSRF token from a rendered form."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def web_login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD) -> Any:
    """Log in through the login form; return the final response."""
    page = client.get("/auth/login")
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page.text)},
        follow_redirects=True,
    )


def api_token(
    client: FlaskClient, username: str, password: str = DEMO_PASSWORD, otp: str | None = None
) -> str:
    """Log in through the API; return a bearer token."""
    body = {"username": username, "password": password}
    if otp:
        body["otp"] = otp
    response = client.post("/api/v1/session", json=body)
    body = response.get_json()
    assert response.status_code == 201 and body, body
    return str(body["token"])


@pytest.fixture
def search_auto_index(app: Flask) -> Iterator[None]:
    """Index every save through the search queue, as the portal does (off in other tests)."""
    app.config["SEARCH_AUTO_INDEX"] = True
    yield
    app.config["SEARCH_AUTO_INDEX"] = False


@pytest.fixture
def run_jobs(app: Flask) -> Any:
    """Work every queue with a real RQ SimpleWorker until empty; return jobs done."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from jobs import QUEUES, get_queue

    def run(queues: tuple[str, ...] = QUEUES) -> bool:
        qs = [get_queue(q) for q in queues]
        worker = SimpleWorker(qs, connection=qs[0].connection, serializer=JSONSerializer)
        return bool(worker.work(burst=True))

    return run


@pytest.fixture
def make_document(users: dict[str, Any]) -> Any:
    """Create a document through the workflow engine, as its creator would."""
    from models.document import Document
    from models.document_type import DocumentType
    from workflows.engine import start

    def make(direction: str = "outgoing", creator: str = "chuyenvien", **fields: Any) -> Any:
        user = users[creator]
        type_name = fields.pop("type_name", "Công văn")
        doc = Document(
            direction=direction,
            doc_type=DocumentType.objects.get(name=type_name),
            doc_type_name=type_name,
            subject=fields.pop("subject", "V/v triển khai kế hoạch kiểm tra thị trường năm 2026"),
            created_by_id=str(user.pk),
            owner_unit_id=str(user.unit.pk),
            issuer_unit=user.unit if direction != "incoming" else None,
            **fields,
        )
        return start(doc, user)

    return make


@pytest.fixture
def units() -> dict[str, Any]:
    """Demo units by abbreviation."""
    from models.organization import Unit

    return {u.abbreviation: u for u in Unit.objects}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API keeps an event loop running in this
    thread while the browser is open, and pyHanko needs its own loop."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
    # The live server's threads send static files to a browser that may leave the page
    # first; werkzeug then drops the connection and the file object is collected unclosed in
    # that thread. Not our code, and reported at a later test's setup: ignore it there only.
    dropped = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(dropped)
