"""Rate limits per key, PII masking in log lines, CORS closed by default."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.app import create_app
from serving.auth import KeyRing, RateLimiter, parse_env_keys
from serving.logs import MaskingFilter, log_config
from serving.store import open_store
from tests.serving.conftest import KEYS, LiveServer, http, make_settings
from triage.pipeline import Triager


@pytest.fixture
def limited(tmp_path: Path, tiny_triager: Triager) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path, None, TRIAGE_RATE_LIMIT="3", TRIAGE_CORS_ORIGINS="https://crm.bank.example")
    store = open_store(settings, tiny_triager.config.deployment.timezone)
    app = create_app(settings, triager=tiny_triager, keys=KeyRing(parse_env_keys(KEYS)), store=store)
    with LiveServer(app) as live:
        yield live


def test_a_key_over_its_rate_gets_429_with_retry_after(limited: LiveServer) -> None:
    with http(limited, "intake-key") as c:
        statuses = [c.post("/v1/triage", json={"text": "年费"}).status_code for _ in range(4)]
        r = c.post("/v1/triage", json={"text": "年费"})
    assert statuses == [200, 200, 200, 429]
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    with http(limited, "agent-key") as other:  # another key has its own budget
        assert other.post("/v1/triage", json={"text": "年费"}).status_code == 200


def test_bucket_refills_over_time() -> None:
    limiter = RateLimiter(60)  # one per second
    assert all(limiter.take("k") == 0 for _ in range(60))
    wait = limiter.take("k")
    assert 0 < wait <= 1.0


def test_cors_only_for_configured_origins(limited: LiveServer, server: LiveServer) -> None:
    preflight = {"Origin": "https://crm.bank.example", "Access-Control-Request-Method": "POST"}
    allowed = httpx.options(f"{limited.url}/v1/triage", headers=preflight)
    assert allowed.headers.get("access-control-allow-origin") == "https://crm.bank.example"
    stranger = httpx.options(f"{limited.url}/v1/triage", headers=preflight | {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    default = httpx.options(f"{server.url}/v1/triage", headers=preflight)  # no origins configured: closed
    assert "access-control-allow-origin" not in default.headers


@pytest.mark.parametrize(
    ("msg", "args", "hidden"),
    [
        ("customer %s called", ("13812345678",), "13812345678"),
        (
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1", "GET", "/v1/tickets?assignee=13812345678", "1.1", 200),
            "13812345678",
        ),
        ("card 6222021234567890128 declined", (), "6222021234567890128"),
        ("id %(id)s", ({"id": "11010519491231002X"},), "11010519491231002X"),
    ],
)
def test_log_lines_are_masked(msg: str, args: tuple, hidden: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("triage.test-masking")
    logger.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="triage.test-masking"):
            logger.info(msg, *args)
    finally:
        logger.filters.clear()
    assert caplog.records and hidden not in caplog.text


def test_uvicorn_config_masks_every_handler() -> None:
    config = log_config()
    assert all(handler["filters"] == ["mask"] for handler in config["handlers"].values())
    assert config["loggers"]["triage"]["handlers"] == ["default"]
