"""A real HTTP server (uvicorn on a loopback port) around the app, for API tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from serving.app import create_app
from serving.auth import KeyRing
from triage.pipeline import Triager
from triage.settings import Settings

KEYS = "intake-key:intake,agent-key:agent,admin-key:admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture(scope="session")
def server(tiny_triager: Triager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path_factory.mktemp("data")), "TRIAGE_API_KEYS": KEYS})
    app = create_app(settings, triager=tiny_triager, keys=KeyRing.from_env(KEYS))
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer intake-key"}, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def bundle_dir(tiny_bundle: Path) -> Path:
    return tiny_bundle
