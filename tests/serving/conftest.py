"""A real HTTP server (uvicorn on a loopback port) around the app, for API tests, once over
SQLite and once over a real PostgreSQL server (TRIAGE_TEST_DATABASE_URL, which .ci/run sets)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from serving.store import open_store
from serving.store.tickets import TicketStore
from triage.pipeline import Triager
from triage.settings import Settings

KEYS = "intake-key:intake,agent-key:agent,admin-key:admin"
BACKENDS = ("sqlite", "postgresql")
PG_ADMIN_ENV = "TRIAGE_TEST_DATABASE_URL"


@contextmanager
def database(backend: str, data_dir: Path) -> Iterator[str | None]:
    """None for the default SQLite file; for PostgreSQL a fresh database, dropped afterwards."""
    if backend == "sqlite":
        yield None
        return
    admin = os.environ.get(PG_ADMIN_ENV)
    if not admin:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ADMIN_ENV} is not set: .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"no PostgreSQL server ({PG_ADMIN_ENV} unset; run .ci/postgres)")
    import psycopg

    name = "triage_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(data_dir: Path, database_url: str | None, **env: str) -> Settings:
    values = {"TRIAGE_DATA_DIR": str(data_dir), "TRIAGE_API_KEYS": KEYS} | env
    if database_url:
        values["DATABASE_URL"] = database_url
    return Settings.from_env(values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, seconds: float = 60) -> None:
    """Until GET /readyz answers 200 (a server process loading its model)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {seconds} s")


class LiveServer:
    def __init__(self, app: object) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def served(
    backend: str, tiny_triager: Triager, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, TicketStore]]:
    data_dir = tmp_path_factory.mktemp(f"data-{backend}")
    with database(backend, data_dir) as url:
        settings = make_settings(data_dir, url)
        store = open_store(settings, tiny_triager.config.deployment.timezone)
        app = create_app(settings, triager=tiny_triager, keys=KeyRing(parse_env_keys(KEYS)), store=store)
        with LiveServer(app) as live:
            yield live, store
        store.engine.dispose()


@pytest.fixture(scope="session")
def server(served: tuple[LiveServer, TicketStore]) -> LiveServer:
    return served[0]


@pytest.fixture(scope="session")
def store(served: tuple[LiveServer, TicketStore]) -> TicketStore:
    return served[1]


def http(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with http(server, "intake-key") as c:
        yield c


@pytest.fixture
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with http(server, "agent-key") as c:
        yield c


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with http(server, "admin-key") as c:
        yield c


@pytest.fixture(scope="session")
def bundle_dir(tiny_bundle: Path) -> Path:
    return tiny_bundle
