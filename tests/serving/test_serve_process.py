"""`triage serve` started as a real process, as the README's run command starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serving.store.keys import key_hash
from tests.serving.conftest import free_port, wait_ready


def test_serve_starts_and_answers(tiny_bundle: Path, tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "TRIAGE_MODEL_DIR": str(tiny_bundle),
        "TRIAGE_DATA_DIR": str(tmp_path),
        "TRIAGE_API_KEYS": "",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # No key configured: the first start creates an admin key and prints it once.
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 60
        while "tk_" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        key = line.strip()
        assert key.startswith("tk_"), "no admin key printed"
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("triage.db*"))  # the database and its WAL
        assert key.encode() not in stored and key_hash(key).encode() in stored  # only its hash is stored
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        r = httpx.post(
            f"{url}/v1/triage",
            json={"text": "手机银行一直闪退登录不了"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["category"]["label"]
        ticket = httpx.get(f"{url}/v1/tickets/{r.json()['ticket_id']}", headers={"Authorization": f"Bearer {key}"})
        assert ticket.status_code == 200
        # A phone number in a query string reaches the access log only masked.
        httpx.get(f"{url}/v1/tickets?assignee=13812345678", headers={"Authorization": f"Bearer {key}"})
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=20)[0]
    assert "/v1/tickets?assignee=138****5678" in rest and "13812345678" not in rest


def test_auth_off_is_refused_off_loopback(tiny_bundle: Path, tmp_path: Path) -> None:
    env = os.environ | {"TRIAGE_MODEL_DIR": str(tiny_bundle), "TRIAGE_DATA_DIR": str(tmp_path), "TRIAGE_AUTH": "off"}
    result = subprocess.run(
        [sys.executable, "-m", "triage", "serve", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "refused on a non-loopback address" in result.stderr
