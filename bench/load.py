"""Load on the HTTP service: `triage serve` in its own process on loopback, driven over real HTTP.

    .venv/bin/python -m bench.load [--bundle DIR] [--duration 20] [--levels 1 8 32] [--workers 1 2]

For each server configuration (--workers): closed-loop clients at each concurrency level post
single complaints to POST /v1/triage (distinct test-split texts, a unique idempotency_key each),
then one level of POST /v1/triage/batch; each level is warmed up first and measured for
--duration seconds. Beside it, the pipeline alone (`Triager.triage` in this process, same
texts, before the server starts) as the baseline of the same run. Afterwards every ticket_id
answered with 200 must be in the store: errors (non-200) and lost tickets are counted.

The clients are one asyncio process (httpx), separate from the server; its CPU time is
reported next to the server's so a starved server shows. Without --bundle the default bundle
serves if it exists, else a TF-IDF bundle built with `triage build-default --baseline`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import free_port, machine, triage_server, write
from training.data import DATASETS, jsonl_files, read_jsonl
from triage.bundle import load_bundle, read_manifest
from triage.config import load_config
from triage.pipeline import Triager, TriageRequest
from triage.settings import Settings

TEST_SPLIT = DATASETS / "complaints" / "w6"
TARGET_P99_MS = 100.0  # at concurrency 8, on 2 cores
TARGET_LEVEL = 8
INTAKE_KEY = "bench-intake-key"
AGENT_KEY = "bench-agent-key"
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0


class LoadError(RuntimeError):
    """The server could not be started or the run could not be measured."""


@dataclass(frozen=True)
class Sample:
    ms: float
    status: int  # 0: no HTTP answer (timeout, connection error); -1: a 200 whose body is not the expected one
    ticket_ids: tuple[str, ...]
    texts: tuple[int, ...]  # positions in the test texts of what was sent


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    data_dir: Path


@dataclass(frozen=True)
class Endpoint:
    """What one client request is: the path, how many complaints it carries, where its tickets are."""

    path: str
    items: int

    def body(self, feed: TextFeed) -> tuple[tuple[int, ...], dict[str, Any]]:
        positions, items = zip(*(feed.item() for _ in range(self.items)), strict=True)
        return positions, {"items": list(items)} if self.path.endswith("/batch") else items[0]

    def ticket_ids(self, answer: dict[str, Any]) -> tuple[str, ...]:
        results = answer["results"] if self.path.endswith("/batch") else [answer]
        if len(results) != self.items:
            raise LoadError(f"{self.path}: {len(results)} results for {self.items} items")
        return tuple(str(r["ticket_id"]) for r in results)


SINGLE = Endpoint("/v1/triage", 1)


class TextFeed:
    """Test-split complaints in a fixed order, each sent with a never-repeated idempotency key;
    the texts start over when they run out or on `rewind()` (the keys never do)."""

    def __init__(self, texts: Sequence[str]) -> None:
        if not texts:
            raise LoadError("no texts to send")
        self._texts = list(texts)
        self._run = uuid.uuid4().hex[:8]
        self._position = 0
        self.sent = 0

    def rewind(self) -> None:
        """Start again from the first text (each server configuration sends the same texts first)."""
        self._position = 0

    @property
    def distinct(self) -> int:
        return len(self._texts)

    def item(self) -> tuple[int, dict[str, Any]]:
        """The next text's position and the request item carrying it."""
        position = self._position
        self._position = (position + 1) % len(self._texts)
        self.sent += 1
        return position, {"text": self._texts[position], "idempotency_key": f"load-{self._run}-{self.sent}"}


def corpus_texts(root: Path = TEST_SPLIT) -> list[str]:
    rows = read_jsonl(jsonl_files(root))
    texts = [str(r["text"]) for r in rows if r.get("split") == "test" and r.get("text")]
    if not texts:
        raise LoadError(f"no test-split complaints under {root}")
    return texts


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and its live descendants (uvicorn workers), from /proc."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:  # the process ended while we looked
                continue
            # Fields after the command name, which may itself hold spaces or parentheses.
            stats[int(entry.name)] = raw[raw.rindex(")") + 2 :].split()
    family, grew = {root}, True
    while grew:
        children = {pid for pid, f in stats.items() if int(f[1]) in family} - family
        family |= children
        grew = bool(children)
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(stats[p][11]) + int(stats[p][12]) for p in family if p in stats) / ticks


def resolve_bundle(given: Path | None, scratch: Path) -> tuple[Path, str]:
    """The bundle to serve and how it was chosen."""
    if given is not None:
        read_manifest(given)  # a clear error now rather than a server that never becomes ready
        return given, "given with --bundle"
    default = Settings.from_env().default_bundle_dir
    if (default / "manifest.json").is_file():
        return default, "the default bundle"
    env = os.environ | {"TRIAGE_DATA_DIR": str(scratch)}
    subprocess.run([sys.executable, "-m", "triage", "build-default", "--baseline"], env=env, check=True)
    return scratch / "bundles" / "default", "no default bundle: TF-IDF built with `triage build-default --baseline`"


def pipeline_baseline(bundle: Path, texts: Sequence[str], runs: int, batch: int) -> tuple[dict[str, Any], list[float]]:
    """The first `runs` texts through the pipeline in this process, one at a time (the first texts the
    clients send, so levels can be compared text by text), and in batches; also the time of each text."""
    triager = Triager(load_config(), load_bundle(bundle))
    for text in texts[-10:]:
        triager.triage(text)
    ms = []
    for text in texts[:runs]:
        start = time.perf_counter()
        triager.triage(text)
        ms.append((time.perf_counter() - start) * 1000)
    batch_ms = []
    for i in range(max(3, runs // (4 * batch))):
        chunk = [TriageRequest(t) for t in itertools.islice(itertools.cycle(texts), i * batch, (i + 1) * batch)]
        start = time.perf_counter()
        triager.triage_batch(chunk)
        batch_ms.append((time.perf_counter() - start) * 1000)
    batched = percentiles(batch_ms)
    return {
        "single": percentiles(ms) | {"runs": len(ms)},
        "batch": batched | {"size": batch, "runs": len(batch_ms), "texts_per_s": batch / (batched["p50_ms"] / 1000)},
        "model": triager.model_info,
    }, ms


def same_texts(samples: Sequence[Sample], pipeline_ms: Sequence[float]) -> dict[str, Any] | None:
    """Single requests whose text the pipeline baseline also timed: HTTP against the pipeline, text by text."""
    pairs = [
        (s.ms, pipeline_ms[s.texts[0]])
        for s in samples
        if s.status == 200 and len(s.texts) == 1 and s.texts[0] < len(pipeline_ms)
    ]
    if not pairs:
        return None
    http, alone = np.array(pairs).T
    return {
        "texts": len(pairs),
        "http_p50_ms": float(np.median(http)),
        "pipeline_p50_ms": float(np.median(alone)),
        "added_p50_ms": float(np.median(http - alone)),
        "ratio_of_means": float(http.mean() / alone.mean()),
    }


@contextmanager
def serve(bundle: Path, workers: int, scratch: Path) -> Iterator[Server]:
    """`python -m triage serve` on a loopback port with its own data directory (a fresh SQLite store)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"serve-w{workers}-", dir=scratch))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TRIAGE_AUTH")} | {
        "TRIAGE_DATA_DIR": str(data_dir),
        "TRIAGE_MODEL_DIR": str(bundle),
        "TRIAGE_API_KEYS": f"{INTAKE_KEY}:intake,{AGENT_KEY}:agent",
        "PYTHONUNBUFFERED": "1",
    }
    log = data_dir / "server.log"
    args = ["--workers", str(workers)]
    with triage_server(free_port(), args, env, log, READY_TIMEOUT_S, ready_in_a_row=5 * workers) as (url, pid):
        yield Server(url, pid, data_dir)


def answer(endpoint: Endpoint, response: httpx.Response) -> tuple[int, tuple[str, ...]]:
    """The status and the ticket ids of a response (status -1 for a 200 that carries no proper results)."""
    if response.status_code != 200:
        return response.status_code, ()
    try:
        return 200, endpoint.ticket_ids(response.json())
    except (ValueError, KeyError, TypeError, LoadError):
        return -1, ()


async def drive(url: str, endpoint: Endpoint, feed: TextFeed, concurrency: int, seconds: float) -> list[Sample]:
    """`concurrency` clients, each sending its next request as soon as the last is answered."""
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {INTAKE_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        stop = time.perf_counter() + seconds

        async def client_loop() -> None:
            while time.perf_counter() < stop:
                positions, body = endpoint.body(feed)
                start = time.perf_counter()
                try:
                    status, ids = answer(endpoint, await client.post(endpoint.path, json=body))
                except httpx.HTTPError:
                    status, ids = 0, ()
                samples.append(Sample((time.perf_counter() - start) * 1000, status, ids, positions))

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return samples


def measure(
    server: Server, endpoint: Endpoint, feed: TextFeed, concurrency: int, seconds: float, warmup: float
) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
    """One level: warm-up (not measured), then `seconds` of load; the figures, warm-up and measured samples."""
    warm = asyncio.run(drive(server.url, endpoint, feed, concurrency, warmup)) if warmup > 0 else []
    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    start = time.perf_counter()
    samples = asyncio.run(drive(server.url, endpoint, feed, concurrency, seconds))
    wall = time.perf_counter() - start
    server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
    ok = [s.ms for s in samples if s.status == 200]
    figures = {
        "endpoint": endpoint.path,
        "items_per_request": endpoint.items,
        "concurrency": concurrency,
        "requests": len(samples),
        "errors": sum(s.status != 200 for s in samples),
        "error_statuses": sorted({s.status for s in samples if s.status != 200}),
        "warmup_requests": len(warm),
        "warmup_errors": sum(s.status != 200 for s in warm),
        "seconds": wall,
        "requests_per_s": len(ok) / wall,
        "texts_per_s": len(ok) * endpoint.items / wall,
        "server_cpu_cores": server_cpu / wall,
        "client_cpu_cores": client_cpu / wall,
        "load_average_1m": os.getloadavg()[0],
    } | (percentiles(ok) if ok else {})
    return figures, warm, samples


def check_tickets(server: Server, samples: Sequence[Sample]) -> dict[str, Any]:
    """Every ticket_id answered with 200 must be in the store, once; a sample is also read back over HTTP."""
    from sqlalchemy import select

    from serving.store.db import database_url, make_engine
    from serving.store.tables import Ticket

    answered = [tid for s in samples if s.status == 200 for tid in s.ticket_ids]
    engine = make_engine(database_url(Settings.from_env({"TRIAGE_DATA_DIR": str(server.data_dir)})))
    try:
        with engine.connect() as conn:
            stored = set(conn.scalars(select(Ticket.ticket_id)))
    finally:
        engine.dispose()
    lost = [tid for tid in answered if tid not in stored]
    headers = {"Authorization": f"Bearer {AGENT_KEY}"}
    probe = answered[:: max(1, len(answered) // 20)]
    with httpx.Client(base_url=server.url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        unreadable = [tid for tid in probe if client.get(f"/v1/tickets/{tid}").status_code != 200]
    return {
        "answered": len(answered),
        "stored": len(stored),
        "lost": len(lost),
        "duplicate_ids": len(answered) - len(set(answered)),
        "read_back": len(probe),
        "read_back_failed": len(unreadable),
    }


def run_config(
    bundle: Path, workers: int, feed: TextFeed, pipeline_ms: Sequence[float], args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    levels: list[dict[str, Any]] = []
    samples: list[Sample] = []
    feed.rewind()
    with serve(bundle, workers, scratch) as server:
        batch = Endpoint("/v1/triage/batch", args.batch_size)
        plan = [(SINGLE, c) for c in args.levels] + [(batch, args.batch_concurrency)]
        for endpoint, concurrency in plan:
            figures, warm, measured = measure(server, endpoint, feed, concurrency, args.duration, args.warmup)
            paired = same_texts(measured, pipeline_ms)
            if paired:
                figures["same_texts_as_pipeline"] = paired
            print(summary_line(workers, figures), flush=True)
            levels.append(figures)
            samples += warm + measured
        tickets = check_tickets(server, samples)
    return {"workers": workers, "levels": levels, "tickets": tickets}


def summary_line(workers: int, f: dict[str, Any]) -> str:
    latency = f"p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms" if "p50_ms" in f else "no answers"
    return (
        f"workers={workers} {f['endpoint']} x{f['items_per_request']} c={f['concurrency']}: "
        f"{f['requests_per_s']:.1f} req/s ({f['texts_per_s']:.1f} texts/s), {latency}, "
        f"errors {f['errors']}/{f['requests']}, server {f['server_cpu_cores']:.2f} cores, "
        f"client {f['client_cpu_cores']:.2f} cores, load {f['load_average_1m']:.1f}"
    )


def verdict(results: dict[str, Any]) -> list[str]:
    """Target and integrity lines, per configuration."""
    lines = []
    for config in results["configs"]:
        at_target = [
            lv for lv in config["levels"] if lv["items_per_request"] == 1 and lv["concurrency"] == TARGET_LEVEL
        ]
        for lv in at_target:
            met = "met" if lv.get("p99_ms", float("inf")) <= TARGET_P99_MS else "NOT met"
            lines.append(
                f"- workers={config['workers']}: p99 at concurrency {TARGET_LEVEL} is {lv.get('p99_ms', float('nan')):.0f} ms "
                f"(target {TARGET_P99_MS:.0f} ms: {met})."
            )
        t = config["tickets"]
        errors = sum(lv["errors"] for lv in config["levels"])
        lines.append(
            f"- workers={config['workers']}: {errors} errors; {t['answered']} tickets answered with 200, "
            f"{t['lost']} lost, {t['duplicate_ids']} duplicate ids, {t['stored']} in the store; "
            f"{t['read_back'] - t['read_back_failed']}/{t['read_back']} read back with GET /v1/tickets/{{id}}."
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    base = results["pipeline"]
    model = base["model"]
    md = [
        f"# HTTP load ({model['name']} {model['version']})",
        "",
        f"Machine: {results['machine']}; load average before the run {results['load_average_before']}",
        f"(other work shares this machine). Bundle: {results['bundle']} ({results['bundle_choice']}); "
        f"TRIAGE_ORT_THREADS={results['ort_threads']}.",
        f"`triage serve` on loopback with a fresh SQLite store; closed-loop clients in one asyncio process "
        f"(httpx); {results['duration_s']:.0f} s per level after {results['warmup_s']:.0f} s of warm-up; "
        f"{results['distinct_texts']} distinct test-split texts, {results['texts_sent']} sent, "
        "each with its own idempotency key.",
        "",
        "| workers | request | concurrency | req/s | texts/s | p50 | p90 | p99 | errors | server CPU | client CPU | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config in results["configs"]:
        for lv in config["levels"]:
            request = "single" if lv["items_per_request"] == 1 else f"batch of {lv['items_per_request']}"
            latency = [f"{lv[k]:.0f} ms" if k in lv else "-" for k in ("p50_ms", "p90_ms", "p99_ms")]
            md.append(
                f"| {config['workers']} | {request} | {lv['concurrency']} | {lv['requests_per_s']:.1f} | "
                f"{lv['texts_per_s']:.1f} | {' | '.join(latency)} | {lv['errors']}/{lv['requests']} | "
                f"{lv['server_cpu_cores']:.2f} cores | {lv['client_cpu_cores']:.2f} cores | {lv['load_average_1m']:.1f} |"
            )
    single, batch = base["single"], base["batch"]
    md += [
        "",
        f"Pipeline alone in one process (same texts, `Triager.triage`, measured in this run before the server "
        f"started): p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms over {single['runs']} texts; "
        f"batches of {batch['size']}: {batch['texts_per_s']:.0f} texts/s (p50 {batch['p50_ms']:.0f} ms a batch).",
    ]
    for config in results["configs"]:
        one = next((lv for lv in config["levels"] if lv["items_per_request"] == 1 and lv["concurrency"] == 1), None)
        if one and "same_texts_as_pipeline" in one:
            p = one["same_texts_as_pipeline"]
            md.append(
                f"HTTP at concurrency 1 with workers={config['workers']}, on the {p['texts']} texts the pipeline also "
                f"timed: p50 {p['http_p50_ms']:.1f} ms against {p['pipeline_p50_ms']:.1f} ms alone; the request adds "
                f"{p['added_p50_ms']:.1f} ms (median per text), mean time {p['ratio_of_means']:.2f}x the pipeline's."
            )
    md += ["", *verdict(results), ""]
    return "\n".join(md)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="default: the default bundle, else a TF-IDF one built now")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="concurrency of single requests")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="one server configuration each")
    parser.add_argument("--pipeline-runs", type=int, default=300)
    parser.add_argument("--name", default="load", help="report name under bench/reports/")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or min(args.levels + args.workers) < 1 or args.batch_size < 1:
        parser.error("durations must be positive and levels, workers and batch size at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        scratch = Path(tmp)
        load_before = [round(x, 2) for x in os.getloadavg()]
        bundle, choice = resolve_bundle(args.bundle, scratch)
        texts = corpus_texts()
        print(f"bundle {bundle} ({choice}); {len(texts)} texts; load average {load_before}", flush=True)
        pipeline, pipeline_ms = pipeline_baseline(bundle, texts, args.pipeline_runs, args.batch_size)
        feed = TextFeed(texts)
        configs = [run_config(bundle, w, feed, pipeline_ms, args, scratch) for w in args.workers]
    results: dict[str, Any] = {
        "machine": machine(),
        "load_average_before": load_before,
        "bundle": str(bundle),
        "bundle_choice": choice,
        "ort_threads": os.environ.get("TRIAGE_ORT_THREADS", "0"),  # server and baseline alike; 0: onnxruntime's choice
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "distinct_texts": feed.distinct,
        "texts_sent": feed.sent,
        "target": {"concurrency": TARGET_LEVEL, "p99_ms": TARGET_P99_MS},
        "pipeline": pipeline,
        "configs": configs,
    }
    print(write(args.name, results, markdown(results)).read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
