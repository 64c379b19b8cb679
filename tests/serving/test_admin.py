"""Model reload without dropping requests, and the Prometheus metrics, over real HTTP."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from tests.serving.conftest import KEYS, LiveServer, http, make_settings
from triage.bundle import MANIFEST


def set_version(bundle: Path, version: str) -> None:
    import json

    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    manifest["version"] = version
    (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def registry_server(tmp_path: Path, tiny_bundle: Path) -> Iterator[tuple[LiveServer, Path]]:
    """A service that loads its own model from the registry's promoted bundle."""
    registry = tmp_path / "registry"
    for version in ("v1", "v2"):
        shutil.copytree(tiny_bundle, registry / version)
        set_version(registry / version, version)
    (registry / "CURRENT").write_text("v1")
    settings = make_settings(tmp_path, None, TRIAGE_WATCH_INTERVAL_S="0.2")
    app = create_app(settings, keys=KeyRing(parse_env_keys(KEYS)))
    with LiveServer(app) as live:
        yield live, registry


def model_version(client: httpx.Client) -> str:
    return str(client.get("/readyz").json()["model"]["version"])


def test_reload_swaps_the_model_without_dropping_requests(registry_server: tuple[LiveServer, Path]) -> None:
    server, registry = registry_server
    with http(server, "admin-key") as admin:
        assert model_version(admin) == "v1"
        failures: list[int] = []
        stop = threading.Event()

        def keep_posting() -> None:
            with http(server, "intake-key") as c:
                while not stop.is_set():
                    r = c.post("/v1/triage", json={"text": "手机银行转账一直失败"})
                    if r.status_code != 200:
                        failures.append(r.status_code)

        worker = threading.Thread(target=keep_posting)
        worker.start()
        (registry / "CURRENT").write_text("v2")
        r = admin.post("/v1/admin/reload")
        stop.set()
        worker.join()
        assert r.status_code == 200 and r.json()["model"]["version"] == "v2"
        assert failures == []
        assert model_version(admin) == "v2"
        assert admin.post("/v1/triage", json={"text": "年费"}).json()["model"]["version"] == "v2"


def test_a_promotion_is_picked_up_by_watching(registry_server: tuple[LiveServer, Path]) -> None:
    import time

    server, registry = registry_server
    with http(server, "agent-key") as agent:
        (registry / "CURRENT").write_text("v2")
        deadline = time.monotonic() + 5
        while model_version(agent) != "v2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert model_version(agent) == "v2"


def test_a_broken_bundle_keeps_the_old_model(registry_server: tuple[LiveServer, Path]) -> None:
    server, registry = registry_server
    (registry / "broken").mkdir()
    (registry / "broken" / MANIFEST).write_text("{not json")
    (registry / "CURRENT").write_text("broken")
    with http(server, "admin-key") as admin:
        r = admin.post("/v1/admin/reload")
        assert r.status_code == 409 and r.json()["error"]["code"] == "reload_failed"
        assert model_version(admin) == "v1"
        with http(server, "agent-key") as agent:
            assert agent.post("/v1/admin/reload").status_code == 403


def test_metrics_count_requests_predictions_and_the_model(registry_server: tuple[LiveServer, Path]) -> None:
    server, _ = registry_server
    with http(server, "intake-key") as c:
        for _ in range(3):
            assert c.post("/v1/triage", json={"text": "信用卡被盗刷了，还在扣款"}).status_code == 200
        c.post("/v1/triage", json={"text": ""})
        text = c.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = ("triage_http_requests_total", (("method", "POST"), ("route", "/v1/triage"), ("status", "200")))
    bad = ("triage_http_requests_total", (("method", "POST"), ("route", "/v1/triage"), ("status", "422")))
    assert samples[ok] == 3 and samples[bad] == 1
    predicted = sum(
        v
        for (name, labels), v in samples.items()
        if name == "triage_predictions_total" and ("head", "urgency") in labels
    )
    assert predicted == 3
    assert samples[("triage_model_info", (("name", "tfidf-baseline"), ("version", "v1")))] == 1
    assert any(name == "triage_http_request_duration_seconds_bucket" for name, _ in samples)
