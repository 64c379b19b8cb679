"""Shared helpers for the benchmarks: timing, the corpus, reports."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

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
