"""Air-gapped installation: build an offline archive on a connected machine, install it on one with no network.

    python3 scripts/airgap.py build [--out FILE.tar.gz] [--bundle DIR] [--extras serve]
                                    [--python-version X.Y] [--platform TAG ...]
    python3 scripts/airgap.py install ARCHIVE --prefix DIR [--python PYTHON] [--sha256 HEX] [--force]

The archive holds a wheelhouse (the project's wheel and the wheels of the serving
dependencies, never torch), the model bundle, this script, MANIFEST.json (every
file with its sha256) and INSTALL.md. Standard library only: it runs before
anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "triage-offline/1"
MANIFEST = "MANIFEST.json"
WHEELHOUSE = "wheelhouse"
BUNDLE = "bundle"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Training-only wheels: serving runs on onnxruntime, so any of these means a wrong extra slipped in.
FORBIDDEN_WHEELS = ("torch", "triton", "nvidia_")
# PEP 600 names of the older manylinux tags, by glibc minor version.
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


class AirgapError(ValueError):
    """Bad input or a failed step; the message says what to do."""


class TamperedArchive(AirgapError):
    """The archive's contents do not match its MANIFEST.json or its published sha256."""


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Target:
    """The Python the wheelhouse is for; no platforms means this machine's."""

    python_version: str
    platforms: tuple[str, ...]
    implementation: str

    @classmethod
    def from_args(cls, python_version: str | None, platforms: Sequence[str]) -> Target:
        version = python_version or running_python()
        if not re.fullmatch(r"3\.\d+", version):
            raise AirgapError(f"--python-version takes MAJOR.MINOR such as 3.11, not {version!r}")
        implementation = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
        return cls(version, tuple(platforms), implementation)

    @property
    def native(self) -> bool:
        return not self.platforms and self.python_version == running_python()

    @property
    def python_tag(self) -> str:
        return f"{self.implementation}{self.python_version.replace('.', '')}"

    def platform_names(self) -> list[str]:
        return list(self.platforms) or [re.sub(r"[-.]", "_", sysconfig.get_platform())]

    def pip_download_args(self) -> list[str]:
        """pip's own target options; pip accepts them only with binary wheels."""
        args = ["--only-binary=:all:", "--python-version", self.python_version, "--implementation", self.implementation]
        for platform in self.pip_platforms():
            args += ["--platform", platform]
        return args

    def pip_platforms(self) -> list[str]:
        """The platform tags for pip, which takes them literally: manylinux_2_Y also admits wheels for older glibc."""
        tags: list[str] = []
        for platform in self.platforms:
            found = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
            if not found:
                tags.append(platform)
                continue
            glibc, arch = int(found[1]), found[2]
            for minor in range(glibc, 4, -1):
                tags.append(f"manylinux_2_{minor}_{arch}")
                if minor in LEGACY_MANYLINUX:
                    tags.append(f"{LEGACY_MANYLINUX[minor]}_{arch}")
        return list(dict.fromkeys(tags))


@dataclass(frozen=True)
class Release:
    """What an archive installs: the project's wheel with its extras, for one Python version."""

    name: str
    version: str
    extras: tuple[str, ...]
    python_version: str

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Release:
        try:
            project, target = manifest["project"], manifest["target"]
            return cls(project["name"], project["version"], tuple(project["extras"]), target["python_version"])
        except (KeyError, TypeError) as exc:
            raise TamperedArchive(f"{MANIFEST}: incomplete ({exc!r})") from exc

    @property
    def requirement(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(root: Path) -> dict[str, dict[str, object]]:
    """Every file under root except the manifest itself: relative POSIX path -> sha256 and size."""
    table: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if name != MANIFEST:
            table[name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return table


def run(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> None:
    printable = " ".join(shlex.quote(str(c)) for c in cmd)
    print(f"+ {printable}", flush=True)
    done = subprocess.run([str(c) for c in cmd], env=env, check=False)
    if done.returncode != 0:
        raise AirgapError(f"failed (exit {done.returncode}): {printable}")


def wheel_name(path: Path) -> tuple[str, str]:
    """(distribution, version) from a wheel's file name (PEP 427)."""
    parts = path.name.split("-")
    if len(parts) < 5 or path.suffix != ".whl":
        raise AirgapError(f"not a wheel file name: {path.name}")
    return parts[0].lower(), parts[1]


# --- build ---------------------------------------------------------------------------------------------------------


def _skip_in_source(directory: str, names: list[str]) -> set[str]:
    # Build in a clean copy: a stale build/ in the checkout would leak deleted modules into the wheel.
    return {n for n in names if n.startswith(".") or n in ("build", "dist", "__pycache__") or n.endswith(".egg-info")}


def build_project_wheel(project: Path, work: Path) -> Path:
    source = work / "source"
    shutil.copytree(project, source, ignore=_skip_in_source)
    out = work / "project"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--wheel-dir", out, source])
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        raise AirgapError(f"expected one project wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def fill_wheelhouse(project_wheel: Path, extras: Sequence[str], target: Target, wheelhouse: Path) -> None:
    """The project's wheel and every dependency of it with the extras, as wheels for the target."""
    spec = f"{project_wheel}[{','.join(extras)}]" if extras else str(project_wheel)
    pip = [sys.executable, "-m", "pip"]
    # `pip wheel` also turns sdist-only dependencies (jieba) into wheels; those are pure Python, so they serve
    # any target, which `pip download --platform` (binary wheels only) could not fetch on its own.
    run([*pip, "wheel", "--disable-pip-version-check", "--wheel-dir", wheelhouse, spec])
    if target.native:
        return
    for wheel in wheelhouse.glob("*.whl"):
        if not wheel.name.endswith("-any.whl"):
            wheel.unlink()
    download: list[str | Path] = [
        "download",
        "--disable-pip-version-check",
        "--dest",
        wheelhouse,
        "--find-links",
        wheelhouse,
    ]
    run([*pip, *download, *target.pip_download_args(), spec])


def check_no_training_wheels(wheelhouse: Path) -> None:
    found = sorted(w.name for w in wheelhouse.glob("*.whl") if wheel_name(w)[0].startswith(FORBIDDEN_WHEELS))
    if found:
        raise AirgapError(f"the wheelhouse holds training-only wheels {found}; serving needs only the serve extra")


def resolve_bundle(bundle: str | None) -> Path:
    """--bundle, else the bundle this machine serves (needs triage installed in this Python)."""
    if bundle is not None:
        path = Path(bundle)
    else:
        try:
            from triage.settings import Settings
        except ImportError as exc:
            raise AirgapError("triage is not installed in this Python: give --bundle DIR") from exc
        path = Settings.from_env().model_path()
    if not (path / "manifest.json").is_file():
        raise AirgapError(f"not a model bundle (no manifest.json): {path}")
    return path.resolve()


def bundle_info(bundle: Path) -> dict[str, object]:
    try:
        raw = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AirgapError(f"{bundle / 'manifest.json'}: {exc}") from exc
    return {key: raw.get(key) for key in ("name", "version", "kind", "format")}


def install_text(stage_name: str, release: Release, target: Target, bundle: dict[str, object]) -> str:
    return f"""# Offline installation of {release.name} {release.version}

For Python {target.python_version} ({target.python_tag}) on {", ".join(target.platform_names())}.
Model bundle: {bundle["name"]} {bundle["version"]} ({bundle["kind"]}). Needs on the target: that Python (with its `venv` module) and `tar`; no network.

```bash
tar xzf {stage_name}.tar.gz
python3 {stage_name}/airgap.py install {stage_name}.tar.gz --prefix /opt/triage
set -a; . /opt/triage/triage.env; /opt/triage/venv/bin/triage serve
```

`install` checks the sha256 of every file against {MANIFEST} (and the archive's
own sha256 when `{stage_name}.tar.gz.sha256` lies beside it, or with `--sha256 HEX`),
creates `PREFIX/venv`, installs `{release.requirement}` with `pip --no-index` from the
wheelhouse, puts the model into `PREFIX/bundle` and writes `PREFIX/triage.env`
(TRIAGE_MODEL_DIR, TRIAGE_DATA_DIR).
"""


def build(args: argparse.Namespace) -> int:
    target = Target.from_args(args.python_version, args.platform)
    extras = tuple(e for e in args.extras.split(",") if e)
    bundle = resolve_bundle(args.bundle)
    with tempfile.TemporaryDirectory(prefix="airgap-build-") as tmp:
        work = Path(tmp)
        project_wheel = build_project_wheel(Path(args.project), work)
        release = Release(*wheel_name(project_wheel), extras, target.python_version)
        stage = work / f"triage-offline-{release.version}"
        fill_wheelhouse(project_wheel, extras, target, stage / WHEELHOUSE)
        check_no_training_wheels(stage / WHEELHOUSE)
        shutil.copytree(bundle, stage / BUNDLE)
        shutil.copy2(Path(__file__), stage / "airgap.py")
        (stage / "INSTALL.md").write_text(install_text(stage.name, release, target, bundle_info(bundle)), "utf-8")
        wheels = sorted(w.name for w in (stage / WHEELHOUSE).glob("*.whl"))
        manifest = {
            "format": FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "project": {"name": release.name, "version": release.version, "extras": list(extras)},
            "target": {
                "python_version": target.python_version,
                "python_tag": target.python_tag,
                "platforms": target.platform_names(),
            },
            "built_with": {"python": sys.version.split()[0], "platform": sysconfig.get_platform()},
            "bundle": bundle_info(bundle),
            "wheels": wheels,
            "files": file_table(stage),
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        out = Path(args.out) if args.out else Path(args.project) / "dist" / f"{stage.name}.tar.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Wheels and ONNX graphs barely compress further; level 6 saves time for the same size.
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname=stage.name)
    digest = sha256_file(out)
    Path(f"{out}.sha256").write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, {len(wheels)} wheels, sha256 {digest}")
    return 0


# --- install -------------------------------------------------------------------------------------------------------


def check_archive_digest(archive: Path, expected: str | None) -> None:
    """Against --sha256, else the .sha256 file published beside the archive, if any."""
    sidecar = Path(f"{archive}.sha256")
    if expected is None and sidecar.is_file():
        expected = sidecar.read_text(encoding="utf-8").split()[0]
    if expected is not None and sha256_file(archive) != expected.lower():
        raise TamperedArchive(f"{archive}: sha256 differs from the published {expected}")


def extract(archive: Path, dest: Path) -> Path:
    """Unpack into dest and return the archive's one top folder; refuses links and paths that escape."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            tops = {Path(m.name).parts[0] for m in members if m.name}
            for m in members:
                if Path(m.name).is_absolute() or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                    raise TamperedArchive(f"{archive}: unexpected entry {m.name!r}")
            if len(tops) != 1:
                raise TamperedArchive(f"{archive}: expected one top folder, found {sorted(tops)}")
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: the standard library's own guard as well
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise TamperedArchive(f"{archive}: not a readable .tar.gz ({exc})") from exc
    return dest / tops.pop()


def verify(stage: Path) -> Release:
    """What the unpacked archive installs, once every file matches its manifest and nothing was added."""
    try:
        manifest = json.loads((stage / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise TamperedArchive(f"{MANIFEST}: not a {FORMAT} manifest")
        expected = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    except (OSError, json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise TamperedArchive(f"unreadable {MANIFEST}: {exc!r}") from exc
    actual = {name: entry["sha256"] for name, entry in file_table(stage).items()}
    problems = [f"missing {n}" for n in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {n}" for n in sorted(actual.keys() - expected.keys())]
    problems += [f"sha256 differs: {n}" for n in sorted(expected.keys() & actual.keys()) if expected[n] != actual[n]]
    if problems:
        raise TamperedArchive("the archive does not match its manifest: " + "; ".join(problems))
    return Release.from_manifest(manifest)


def python_version_of(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AirgapError(f"cannot run {python}: {done.stderr.strip()}")
    return done.stdout.strip()


def env_file(prefix: Path) -> str:
    values = {"TRIAGE_MODEL_DIR": prefix / BUNDLE, "TRIAGE_DATA_DIR": prefix / "data"}
    return "".join(f"{key}={shlex.quote(str(value))}\n" for key, value in values.items())


def install(args: argparse.Namespace) -> int:
    archive = Path(args.archive).resolve()
    prefix = Path(args.prefix).resolve()
    if not archive.is_file():
        raise AirgapError(f"no such archive: {archive}")
    check_archive_digest(archive, args.sha256)
    venv, bundle = prefix / "venv", prefix / BUNDLE
    for path in (venv, bundle):
        if path.exists() and not args.force:
            raise AirgapError(f"{path} exists: install into a new --prefix, or pass --force to replace it")
    prefix.mkdir(parents=True, exist_ok=True)
    # Unpack inside the prefix so the bundle moves into place without a copy across file systems.
    with tempfile.TemporaryDirectory(prefix=".airgap-", dir=prefix) as tmp:
        stage = extract(archive, Path(tmp))
        release = verify(stage)
        have = python_version_of(args.python)
        if have != release.python_version:
            raise AirgapError(f"the wheels are for Python {release.python_version}, {args.python} is {have}")
        for path in (venv, bundle):
            if path.exists():
                shutil.rmtree(path)
        run([args.python, "-m", "venv", venv])
        pip: list[str | Path] = [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--no-index",
            "--disable-pip-version-check",
        ]
        run([*pip, "--find-links", stage / WHEELHOUSE, release.requirement])
        shutil.move(stage / BUNDLE, bundle)
        shutil.copy2(stage / MANIFEST, prefix / MANIFEST)
    (prefix / "data").mkdir(exist_ok=True)
    (prefix / "triage.env").write_text(env_file(prefix), encoding="utf-8")
    env_path = shlex.quote(str(prefix / "triage.env"))
    print(f"Installed {release.name} {release.version} into {prefix}. Start it with:")
    print(f"  set -a; . {env_path}; {shlex.quote(str(venv / 'bin' / 'triage'))} serve")
    return 0


# --- command line --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airgap.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="on a connected machine: wheelhouse + model bundle -> one .tar.gz")
    p.add_argument("--out", help="archive to write (default: PROJECT/dist/triage-offline-VERSION.tar.gz)")
    p.add_argument("--bundle", help="model bundle to ship (default: the one this machine serves)")
    p.add_argument("--extras", default="serve", help="comma-separated extras to install (default: serve)")
    p.add_argument("--python-version", help="target Python as MAJOR.MINOR (default: this one)")
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        help="target wheel platform tag such as manylinux_2_28_x86_64 (older glibc tags included), repeatable",
    )
    p.add_argument("--project", default=str(PROJECT_ROOT), help="project checkout to build (default: this one)")
    p.set_defaults(func=build)

    p = sub.add_parser("install", help="on the offline machine: verify the archive and install it under --prefix")
    p.add_argument("archive", help="the triage-offline-VERSION.tar.gz file")
    p.add_argument("--prefix", required=True, help="folder for venv/, bundle/, data/ and triage.env")
    p.add_argument("--python", default=sys.executable, help="interpreter for the virtual environment")
    p.add_argument("--sha256", help="the archive's published sha256 (default: ARCHIVE.sha256 when present)")
    p.add_argument("--force", action="store_true", help="replace an existing PREFIX/venv and PREFIX/bundle")
    p.set_defaults(func=install)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AirgapError as exc:
        print(f"airgap: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
