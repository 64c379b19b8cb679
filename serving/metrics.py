"""Prometheus metrics for the service, on a registry of its own (not prometheus_client's global one).

`Metrics.from_env()` builds one set per application; `MetricsMiddleware(app,
metrics)` counts and times HTTP requests by route template; `render(metrics)`
is the body of `GET /metrics`; `record_result`, `set_model`, `record_webhook`
and the batcher's `on_batch=metrics.batch_size.observe` record the rest.

Several worker processes (`triage serve --workers N`): each worker has its own
counters, so a scrape must merge them. prometheus_client does that through
files when PROMETHEUS_MULTIPROC_DIR names a directory; the variable is read when
prometheus_client is first imported, so `serve` must, before uvicorn starts the
workers (which are spawned, fresh processes that inherit the environment):
  1. `reset_multiprocess_dir(path)` (an empty directory: files left from an
     earlier run would be added to this run's counts);
  2. `os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)`;
and leave the variable unset with one worker (uvicorn then runs the app in
the serve process itself, where prometheus_client is already imported).
Each worker should call `mark_process_dead(metrics)` when it shuts down, so
its model-info gauge stops counting. `Metrics` refuses to start when the
variable is set but prometheus_client was imported before it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage import HEADS

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a cache-hot 1 ms call to the 2 s a large batch may take.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The route label of requests no route matched (404s): one series, not one per path probed.
UNMATCHED = "<unmatched>"


class MetricsConfigError(RuntimeError):
    """PROMETHEUS_MULTIPROC_DIR is unusable (see the module docstring)."""


class Metrics:
    """One application's metrics. `multiprocess_dir` set: scrapes merge every worker's files there."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None:
            if not multiprocess_dir.is_dir():
                raise MetricsConfigError(f"{MULTIPROC_ENV}={multiprocess_dir} is not a directory")
            if not getattr(values.ValueClass, "_multiprocess", False):
                raise MetricsConfigError(
                    f"{MULTIPROC_ENV} was set after prometheus_client was imported; set it before the workers start"
                )
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "triage_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "triage_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter("triage_predictions", "Predicted labels by head", ["head", "label"], registry=r)
        self.abstentions = Counter(
            "triage_abstentions", "Predictions below the head's review threshold (needs_review)", ["head"], registry=r
        )
        # A gauge, not an Info (Info does not work in multiprocess mode). livesum: with several
        # workers, the value is how many live workers serve that model.
        self.model = Gauge(
            "triage_model_info",
            "The model this process serves (1)",
            ["name", "version"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.batch_size = Histogram("triage_batch_size", "Items per model call", buckets=BATCH_BUCKETS, registry=r)
        self.webhooks = Counter("triage_webhook_deliveries", "Webhook deliveries by outcome", ["outcome"], registry=r)
        # (name, version) of the model set_model last recorded.
        self.served: tuple[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Metrics:
        env = os.environ if env is None else env
        directory = env.get(MULTIPROC_ENV)
        return cls(Path(directory) if directory else None)


def render(metrics: Metrics) -> tuple[bytes, str]:
    """The exposition text and its content type, for GET /metrics."""
    if metrics.multiprocess_dir is None:
        return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
    # A fresh registry per scrape, as prometheus_client's multiprocess docs ask: the
    # collector reads every worker's files each time.
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=str(metrics.multiprocess_dir))
    return generate_latest(merged), CONTENT_TYPE_LATEST


def record_result(metrics: Metrics, result: Mapping[str, Any]) -> None:
    """Count one triage result (`TriageResult.to_dict()`): its label per head, and abstentions."""
    for head in HEADS:
        outcome = result[head]
        metrics.predictions.labels(head, outcome["label"]).inc()
        if outcome["needs_review"]:
            metrics.abstentions.labels(head).inc()


def set_model(metrics: Metrics, name: str, version: str) -> None:
    """The model now served. The previous one drops to 0 (label removal is not possible in multiprocess mode)."""
    if metrics.served is not None and metrics.served != (name, version):
        metrics.model.labels(*metrics.served).set(0)
    metrics.model.labels(name, version).set(1)
    metrics.served = (name, version)


def record_webhook(metrics: Metrics, ok: bool) -> None:
    metrics.webhooks.labels("ok" if ok else "failed").inc()


def reset_multiprocess_dir(path: Path) -> None:
    """Create `path`, or empty it of an earlier run's metric files."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def mark_process_dead(metrics: Metrics, pid: int | None = None) -> None:
    """On worker shutdown: its live gauges (the model info) stop counting. No-op in one process."""
    if metrics.multiprocess_dir is not None:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, str(metrics.multiprocess_dir))


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/tickets/{ticket_id}`), set on the scope by the router."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times HTTP requests, labelled by route template (low cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees when the app raises before responding
        start = time.perf_counter()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            # The router wrote the matched route into this same scope dict.
            route, method = route_template(scope), scope["method"]
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, method, str(status)).inc()
