"""Shared helpers for the benchmarks: timing, the corpus, reports."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPORTS = Path(__file__).parent / "reports"


def timings(fn: Callable[[], object], runs: int, warmup: int = 5) -> dict[str, float]:
    """Milliseconds per call: p50, p90, p99, mean."""
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1000)
    a = np.array(ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "runs": runs,
    }


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "when": datetime.now().isoformat(timespec="seconds"),
    }


def write(name: str, data: dict[str, Any], md: str) -> Path:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    path = REPORTS / f"{name}.md"
    path.write_text(md, encoding="utf-8")
    return path


def stop(proc: subprocess.Popen[Any]) -> None:
    """End a server process: politely first, then for sure."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServerNotReady(RuntimeError):
    """`triage serve` exited, or did not answer /readyz in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def triage_server(
    port: int,
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    timeout_s: float,
    ready_in_a_row: int = 1,
) -> Iterator[tuple[str, int]]:
    """`triage serve` in its own process on a loopback port, its output in `log` (an unread pipe
    would fill and stall it); yields its URL and process id once /readyz has answered 200 `ready_in_a_row` times
    in a row on fresh connections (with several workers, each must have loaded); stopped afterwards."""
    argv = [sys.executable, "-m", "triage", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    url = f"http://127.0.0.1:{port}"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            in_a_row = 0
            while in_a_row < ready_in_a_row:
                if proc.poll() is not None:
                    raise ServerNotReady(f"triage serve exited with {proc.returncode} before it was ready; see {log}")
                if time.monotonic() > deadline:
                    raise ServerNotReady(f"triage serve was not ready within {timeout_s:.0f} s; see {log}")
                try:
                    ready = httpx.get(f"{url}/readyz", timeout=5).status_code == 200
                except httpx.TransportError:
                    ready = False
                in_a_row = in_a_row + 1 if ready else 0
                time.sleep(0.05 if ready else 0.3)
            yield url, proc.pid
        finally:
            stop(proc)
