"""scripts/airgap.py: an archive built here installs and serves with pip kept off the network.

The build needs the package index once (pip's cache makes later runs quick); the
install runs with every proxy and index pointed at a closed port, so any download
attempt fails the test.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "airgap.py"
DEAD = "http://127.0.0.1:9"
# No way out: an install that tried the network would fail instead of quietly downloading.
OFFLINE = {
    "PIP_INDEX_URL": f"{DEAD}/simple",
    "PIP_NO_INDEX": "1",
    "HTTP_PROXY": DEAD,
    "HTTPS_PROXY": DEAD,
    "http_proxy": DEAD,
    "https_proxy": DEAD,
}


def free_port() -> int:
    # Not tests.serving.conftest's: that imports the web stack, which this test leaves to the installed venv.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the triage settings of whoever runs the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    return env | extra


def airgap(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {key: shlex.split(value)[0] for key, value in pairs}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    out = tmp_path_factory.mktemp("airgap") / "triage-offline.tar.gz"
    done = airgap("build", "--bundle", tiny_bundle, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory, archive: Path) -> Path:
    target = tmp_path_factory.mktemp("offline") / "triage"
    done = airgap("install", archive, "--prefix", target, env=clean_env(**OFFLINE))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"set -a; . {target / 'triage.env'}; {target / 'venv/bin/triage'} serve" in done.stdout
    return target


def manifest_of(archive: Path) -> dict[str, object]:
    with tarfile.open(archive, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/MANIFEST.json"))
        f = tar.extractfile(member)
        assert f is not None
        return dict(json.load(f))


@pytest.mark.slow
def test_installed_cli_classifies_with_the_shipped_bundle(prefix: Path, tiny_bundle: Path) -> None:
    settings = read_env_file(prefix / "triage.env")
    assert settings == {"TRIAGE_MODEL_DIR": str(prefix / "bundle"), "TRIAGE_DATA_DIR": str(prefix / "data")}
    done = subprocess.run(
        [prefix / "venv" / "bin" / "triage", "classify", "--json", "信用卡被盗刷了"],
        env=clean_env(**OFFLINE, **settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["category"]["label"] == "credit_card"
    assert result["issue"]["label"] == "funds_security"
    shipped = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert result["model"]["version"] == shipped["version"]


@pytest.mark.slow
def test_wheelhouse_and_install_hold_no_torch(archive: Path, prefix: Path) -> None:
    wheels = manifest_of(archive)["wheels"]
    assert isinstance(wheels, list)
    names = {w.split("-")[0].lower() for w in wheels}
    assert {"complaint_triage", "onnxruntime", "tokenizers", "fastapi", "uvicorn", "jieba"} <= names
    assert not {n for n in names if n.startswith(("torch", "nvidia_", "triton", "transformers"))}
    probe = "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('onnxruntime') is not None)"
    done = subprocess.run([prefix / "venv" / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.slow
def test_installed_service_answers(prefix: Path) -> None:
    port = free_port()
    env = clean_env(**OFFLINE, **read_env_file(prefix / "triage.env"), TRIAGE_API_KEYS="airgap-key:admin")
    proc = subprocess.Popen(
        [prefix / "venv" / "bin" / "triage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        r = httpx.post(
            f"{url}/v1/triage",
            json={"text": "信用卡被盗刷了"},
            headers={"Authorization": "Bearer airgap-key"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["category"]["label"] == "credit_card"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()


def forge(archive: Path, out: Path, name: str, data: bytes | None) -> None:
    """A copy of the archive with one file (path below its top folder) replaced, added, or removed (None)."""
    target = ""
    with tarfile.open(archive, "r|gz") as src, tarfile.open(out, "w:gz", compresslevel=0) as dst:
        for member in src:  # streamed: the first entry is the archive's top folder
            target = target or f"{member.name.split('/')[0]}/{name}"
            if member.name != target:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        if data is not None:
            info = tarfile.TarInfo(target)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bundle/manifest.json", b"{}", "sha256 differs: bundle/manifest.json"),
        ("wheelhouse/evil-1.0-py3-none-any.whl", b"PK", "unexpected wheelhouse/evil-1.0-py3-none-any.whl"),
        ("INSTALL.md", None, "missing INSTALL.md"),
    ],
)
def test_tampered_archive_is_refused(archive: Path, tmp_path: Path, name: str, data: bytes | None, reason: str) -> None:
    forged = tmp_path / "forged.tar.gz"
    forge(archive, forged, name, data)
    done = airgap("install", forged, "--prefix", tmp_path / "prefix", env=clean_env(**OFFLINE))
    assert done.returncode == 2
    assert "does not match its manifest" in done.stderr and reason in done.stderr
    assert not (tmp_path / "prefix" / "venv").exists()


@pytest.mark.slow
def test_archive_differing_from_its_published_sha256_is_refused(archive: Path, tmp_path: Path) -> None:
    copy = tmp_path / archive.name
    copy.write_bytes(archive.read_bytes())
    Path(f"{copy}.sha256").write_text(f"{'0' * 64}  {copy.name}\n", encoding="utf-8")
    done = airgap("install", copy, "--prefix", tmp_path / "prefix", env=clean_env(**OFFLINE))
    assert done.returncode == 2 and "sha256 differs from the published" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--python-version", "3", "--bundle", "."], "--python-version takes MAJOR.MINOR"),
        (["build", "--bundle", "."], "not a model bundle"),
        (["install", "nothing.tar.gz", "--prefix", "p"], "no such archive"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and message in done.stderr


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("airgap", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["airgap"] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("platform", "included", "excluded"),
    [
        ("win_amd64", {"win_amd64"}, {"manylinux1_x86_64"}),
        (
            "manylinux_2_28_x86_64",
            {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"},
            {"manylinux_2_29_x86_64", "manylinux_2_28_aarch64"},
        ),
        (
            "manylinux_2_12_aarch64",
            {"manylinux_2_12_aarch64", "manylinux2010_aarch64", "manylinux_2_5_aarch64"},
            {"manylinux2014_aarch64", "manylinux_2_17_aarch64"},
        ),
    ],
)
def test_a_manylinux_target_admits_wheels_for_older_glibc(
    platform: str, included: set[str], excluded: set[str]
) -> None:
    tags = load_script().Target.from_args("3.11", [platform]).pip_platforms()
    assert tags[0] == platform and len(tags) == len(set(tags))
    assert included <= set(tags) and not excluded & set(tags)
