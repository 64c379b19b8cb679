"""`triage serve --workers 2` against one store: no duplicate tickets or numbers across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import BACKENDS, KEYS, database, free_port, wait_ready


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_share_one_store(backend: str, tiny_bundle: Path, tmp_path: Path) -> None:
    port = free_port()
    with database(backend, tmp_path) as url:
        env = os.environ | {
            "TRIAGE_MODEL_DIR": str(tiny_bundle),
            "TRIAGE_DATA_DIR": str(tmp_path),
            "TRIAGE_API_KEYS": KEYS,
        }
        if url:
            env["DATABASE_URL"] = url
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base)

            def post(i: int) -> httpx.Response:
                body = {"text": f"第{i % 10}次反映手机银行转账失败", "idempotency_key": f"k-{i % 10}"}
                return httpx.post(
                    f"{base}/v1/triage", json=body, headers={"Authorization": "Bearer intake-key"}, timeout=30
                )

            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(post, range(40)))
            assert [r.status_code for r in responses] == [200] * 40
            by_key: dict[str, set[str]] = {}
            for i, r in enumerate(responses):
                by_key.setdefault(f"k-{i % 10}", set()).add(r.json()["ticket_id"])
            assert all(len(ids) == 1 for ids in by_key.values())
            numbers = {next(iter(ids)) for ids in by_key.values()}
            assert len(numbers) == 10
            listed = httpx.get(
                f"{base}/v1/tickets", params={"limit": 100}, headers={"Authorization": "Bearer agent-key"}
            ).json()["items"]
            assert {t["ticket_id"] for t in listed} == numbers
            metrics = httpx.get(f"{base}/metrics").text
            assert "triage_http_requests_total" in metrics
        finally:
            proc.terminate()
            proc.wait(timeout=30)
