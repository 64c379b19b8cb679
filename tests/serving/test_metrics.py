"""Metrics: the middleware's route-template labels, result counting, rendering, multiprocess merging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI, Response
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from serving.metrics import (
    MULTIPROC_ENV,
    UNMATCHED,
    Metrics,
    MetricsConfigError,
    MetricsMiddleware,
    record_result,
    record_webhook,
    render,
    reset_multiprocess_dir,
    set_model,
)

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def scrape(metrics: Metrics) -> Samples:
    body, content_type = render(metrics)
    assert content_type.startswith("text/plain")
    return parse(body.decode())


def result(category: str, urgency: str, review: set[str]) -> dict[str, object]:
    labels = {"category": category, "issue": "operations", "urgency": urgency, "sentiment": "negative"}
    return {head: {"label": label, "needs_review": head in review} for head, label in labels.items()}


@pytest.fixture
def app() -> FastAPI:
    metrics = Metrics()
    app = FastAPI()

    @app.get("/v1/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, str]:
        return {"id": ticket_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("broken on purpose")

    @app.get("/metrics")
    async def metrics_route() -> object:
        body, content_type = render(metrics)
        return Response(body, media_type=content_type)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def test_requests_are_counted_by_route_template(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        for ticket_id in ("TS1", "TS2", "TS3"):
            assert client.get(f"/v1/tickets/{ticket_id}").status_code == 200
        assert client.get("/nowhere/at/all").status_code == 404
        assert client.get("/boom").status_code == 500
        scraped = parse(client.get("/metrics").text)
    total = "triage_http_requests_total"
    assert value(scraped, total, route="/v1/tickets/{ticket_id}", method="GET", status="200") == 3
    assert value(scraped, total, route=UNMATCHED, method="GET", status="404") == 1
    assert value(scraped, total, route="/boom", method="GET", status="500") == 1
    assert not any("TS1" in str(labels) for _, labels in scraped)
    latency = "triage_http_request_duration_seconds"
    assert value(scraped, f"{latency}_count", route="/v1/tickets/{ticket_id}", method="GET") == 3
    assert value(scraped, f"{latency}_bucket", route="/v1/tickets/{ticket_id}", method="GET", le="2.0") == 3


def test_record_result_counts_labels_and_abstentions() -> None:
    metrics = Metrics()
    record_result(metrics, result("credit_card", "P1", review=set()))
    record_result(metrics, result("credit_card", "P3", review={"category", "urgency"}))
    record_result(metrics, result("loan", "P3", review={"urgency"}))
    scraped = scrape(metrics)
    predictions = "triage_predictions_total"
    assert value(scraped, predictions, head="category", label="credit_card") == 2
    assert value(scraped, predictions, head="category", label="loan") == 1
    assert value(scraped, predictions, head="urgency", label="P3") == 2
    assert value(scraped, predictions, head="sentiment", label="negative") == 3
    assert value(scraped, "triage_abstentions_total", head="urgency") == 2
    assert value(scraped, "triage_abstentions_total", head="category") == 1
    assert value(scraped, "triage_abstentions_total", head="issue") == 0


def test_model_batches_and_webhooks() -> None:
    metrics = Metrics()
    set_model(metrics, "tiny", "1")
    set_model(metrics, "tiny", "2")
    for size in (1, 7, 32):
        metrics.batch_size.observe(size)
    record_webhook(metrics, ok=True)
    record_webhook(metrics, ok=False)
    record_webhook(metrics, ok=True)
    scraped = scrape(metrics)
    assert value(scraped, "triage_model_info", name="tiny", version="2") == 1
    assert value(scraped, "triage_model_info", name="tiny", version="1") == 0
    assert value(scraped, "triage_batch_size_count") == 3
    assert value(scraped, "triage_batch_size_sum") == 40
    assert value(scraped, "triage_batch_size_bucket", le="8.0") == 2
    assert value(scraped, "triage_webhook_deliveries_total", outcome="ok") == 2
    assert value(scraped, "triage_webhook_deliveries_total", outcome="failed") == 1


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    record_webhook(first, ok=True)
    assert value(scrape(first), "triage_webhook_deliveries_total", outcome="ok") == 1
    assert value(scrape(second), "triage_webhook_deliveries_total", outcome="ok") == 0


WORKER = """
import json, sys
from serving.metrics import Metrics, mark_process_dead, record_result, record_webhook, render, set_model
metrics = Metrics.from_env()
task = json.loads(sys.argv[1])
if task["role"] == "worker":
    set_model(metrics, "tiny", task["version"])
    for _ in range(task["webhooks"]):
        record_webhook(metrics, ok=True)
    metrics.batch_size.observe(task["webhooks"])
    if task["exits"]:
        mark_process_dead(metrics)
else:
    sys.stdout.write(render(metrics)[0].decode())
"""


def run_process(directory: Path, **task: object) -> str:
    env = {**os.environ, MULTIPROC_ENV: str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(task)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_multiprocess_mode_merges_worker_processes(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"left over from an earlier run")
    reset_multiprocess_dir(directory)
    assert not list(directory.iterdir())
    run_process(directory, role="worker", version="1", webhooks=2, exits=True)
    run_process(directory, role="worker", version="2", webhooks=3, exits=False)
    scraped = parse(run_process(directory, role="scrape"))
    assert value(scraped, "triage_webhook_deliveries_total", outcome="ok") == 5
    assert value(scraped, "triage_batch_size_count") == 2
    # The first worker shut down: only the live one counts towards the model it serves.
    assert value(scraped, "triage_model_info", name="tiny", version="2") == 1
    assert value(scraped, "triage_model_info", name="tiny", version="1") == 0


def test_multiprocess_variable_set_too_late_is_refused(tmp_path: Path) -> None:
    # This test process imported prometheus_client without the variable.
    with pytest.raises(MetricsConfigError, match="imported"):
        Metrics.from_env({MULTIPROC_ENV: str(tmp_path)})
    with pytest.raises(MetricsConfigError, match="not a directory"):
        Metrics.from_env({MULTIPROC_ENV: str(tmp_path / "missing")})
