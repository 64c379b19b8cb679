"""The model registry (SPEC sections 7 and 8): promoted bundles and every decision about them.

Layout, under `Settings.registry_dir`:

    <version>/       a registered bundle (never modified after registration)
    CURRENT          the promoted version's name; `Settings.model_path()` reads it
    history.jsonl    one line per registration, promotion, refusal and rollback

Serving workers watch CURRENT, so it is replaced atomically (temporary file,
then os.replace): a reader sees the old name or the new one, never half a name.
Writers take an exclusive lock, so two promotions cannot interleave their
read-check-write of CURRENT and history.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from training.data import read_jsonl
from training.staging import staged
from triage import HEADS
from triage.bundle import MANIFEST, read_manifest
from triage.errors import ConfigError, TriageError

POINTER = "CURRENT"
HISTORY = "history.jsonl"
COMPARISON = "comparison.json"  # written into a bundle's reports/ by training.retrain
EVENTS = ("register", "promote", "refuse", "hold", "rollback")
# A version is a folder name beside CURRENT and history.jsonl: no separators, no leading dot.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RESERVED = {POINTER, HISTORY}


class RegistryError(ValueError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to, ...)."""


@dataclass(frozen=True)
class ModelEntry:
    version: str
    name: str
    kind: str
    created: str  # ISO 8601: registration time (folder time for bundles copied in by hand)
    promoted: bool
    path: Path
    metrics: dict[str, float | None] = field(default_factory=dict)  # test macro-F1 per head, p1_recall, n


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def check_version(version: str) -> str:
    if not _VERSION.match(version) or version in _RESERVED:
        raise RegistryError(f"invalid version name {version!r}: letters, digits, '.', '_' and '-', no leading dot")
    return version


def current_version(registry_dir: Path) -> str | None:
    pointer = registry_dir / POINTER
    if not pointer.is_file():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


def current_bundle(registry_dir: Path) -> Path | None:
    """The promoted bundle's folder, or None when nothing is promoted (or its folder is gone)."""
    version = current_version(registry_dir)
    path = registry_dir / version if version else None
    return path if path is not None and (path / MANIFEST).is_file() else None


def read_history(registry_dir: Path) -> list[dict[str, Any]]:
    path = registry_dir / HISTORY
    if not path.is_file():
        return []
    try:
        return read_jsonl([path])
    except TriageError as exc:
        raise RegistryError(str(exc)) from exc


@contextmanager
def _locked(registry_dir: Path) -> Iterator[None]:
    registry_dir.mkdir(parents=True, exist_ok=True)
    with (registry_dir / ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _append(registry_dir: Path, event: dict[str, Any]) -> dict[str, Any]:
    with (registry_dir / HISTORY).open("a", encoding="utf-8") as f:
        f.write(json.dumps(event, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return event


def _event(
    kind: str,
    version: str,
    previous: str | None,
    actor: str,
    reasons: Sequence[str],
    figures: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if kind not in EVENTS:
        raise RegistryError(f"unknown history event {kind!r}")
    return {
        "time": now(),
        "event": kind,
        "version": version,
        "previous": previous,
        "actor": actor,
        "reasons": list(reasons),
        "figures": dict(figures or {}),
    }


def _write_pointer(registry_dir: Path, version: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=registry_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, registry_dir / POINTER)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def bundle_path(registry_dir: Path, version: str) -> Path:
    path = registry_dir / check_version(version)
    if not path.is_dir():
        raise RegistryError(f"no version {version!r} in {registry_dir}")
    try:
        read_manifest(path)
    except ConfigError as exc:
        raise RegistryError(str(exc)) from exc
    return path


def _free_name(registry_dir: Path, wanted: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", wanted).strip(".-_") or "model"
    name, n = base, 1
    while (registry_dir / name).exists() or name in _RESERVED:
        n += 1
        name = f"{base}-{n}"
    return check_version(name)


def register(
    bundle_dir: Path, registry_dir: Path, version: str | None = None, move: bool = False, actor: str = ""
) -> str:
    """Put a built bundle into the registry (not promoted) and return its version.

    The default version is the bundle's own manifest version, made unique. The bundle is
    copied (or moved, with `move`) into a temporary folder inside the registry and renamed
    into place, so a half-copied bundle never appears under a version name.
    """
    try:
        manifest = read_manifest(bundle_dir)
    except ConfigError as exc:
        raise RegistryError(str(exc)) from exc
    registry_dir = registry_dir.resolve()
    if bundle_dir.resolve().parent == registry_dir:
        raise RegistryError(f"{bundle_dir} is already in the registry")
    with _locked(registry_dir):
        if version is None:
            version = _free_name(registry_dir, manifest.version)
        elif (registry_dir / check_version(version)).exists():
            raise RegistryError(f"version {version!r} exists already")
        target = registry_dir / version
        if move and bundle_dir.stat().st_dev == registry_dir.stat().st_dev:
            os.rename(bundle_dir, target)  # atomic within one file system
        else:
            with staged(target) as tmp:
                shutil.copytree(bundle_dir, tmp, dirs_exist_ok=True)
            if move:
                shutil.rmtree(bundle_dir)
        source = f"registered {manifest.name} {manifest.version} from {bundle_dir}"
        _append(registry_dir, _event("register", version, None, actor, [source], headline(target)))
    return version


def record(
    registry_dir: Path,
    event: str,
    version: str,
    actor: str,
    reasons: Sequence[str],
    figures: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append a decision that changes nothing (a refusal, or a candidate held back) to the history."""
    if event not in ("refuse", "hold"):
        raise RegistryError(f"record() takes 'refuse' or 'hold', not {event!r}; promote and rollback change CURRENT")
    with _locked(registry_dir):
        bundle_path(registry_dir, version)
        return _append(registry_dir, _event(event, version, current_version(registry_dir), actor, reasons, figures))


def promote(
    registry_dir: Path,
    version: str,
    reason: str | Sequence[str],
    actor: str,
    figures: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Make `version` the served bundle; returns the history line written (figures default to its headline)."""
    reasons = [reason] if isinstance(reason, str) else list(reason)
    with _locked(registry_dir):
        path = bundle_path(registry_dir, version)
        previous = current_version(registry_dir)
        if previous == version:
            raise RegistryError(f"{version} is already the promoted version")
        _write_pointer(registry_dir, version)
        return _append(
            registry_dir, _event("promote", version, previous, actor, reasons, dict(figures or headline(path)))
        )


def lineage(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The promoted versions as a stack: a promotion pushes, a rollback pops."""
    stack: list[str] = []
    for e in history:
        if e.get("event") == "promote":
            stack.append(str(e["version"]))
        elif e.get("event") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != e["version"]:
                stack.append(str(e["version"]))
    return stack


def rollback(registry_dir: Path, actor: str, reason: str = "rollback requested") -> dict[str, Any]:
    """Serve the version promoted before the current one again; returns the history line written."""
    with _locked(registry_dir):
        current = current_version(registry_dir)
        if current is None:
            raise RegistryError("nothing is promoted: nothing to roll back")
        stack = lineage(read_history(registry_dir))
        if not stack or stack[-1] != current:  # CURRENT was written by hand
            stack.append(current)
        if len(stack) < 2:
            raise RegistryError(f"{current} is the first promoted version: nothing to roll back to")
        target = stack[-2]
        path = bundle_path(registry_dir, target)
        _write_pointer(registry_dir, target)
        return _append(registry_dir, _event("rollback", target, current, actor, [reason], headline(path)))


def headline(bundle_dir: Path) -> dict[str, float | None]:
    """Test macro-F1 per head, P1 recall and test size: from the manifest, else a retrain comparison."""
    metrics = read_manifest(bundle_dir).metrics.get("test") or {}
    if not metrics:
        comparison = bundle_dir / "reports" / COMPARISON
        if comparison.is_file():
            metrics = json.loads(comparison.read_text(encoding="utf-8"))["new"]["summary"]
    out: dict[str, float | None] = {h: metrics[h]["macro_f1"] for h in HEADS if h in metrics}
    if metrics:
        out["p1_recall"] = metrics.get("p1_recall")
        out["n"] = metrics.get("n")
    return out


def list_models(registry_dir: Path) -> list[ModelEntry]:
    """Registered bundles, oldest first."""
    if not registry_dir.is_dir():
        return []
    history = read_history(registry_dir)
    registered = {e["version"]: (e["time"], n) for n, e in enumerate(history) if e.get("event") == "register"}
    current = current_version(registry_dir)
    entries, order = [], {}
    for path in registry_dir.iterdir():
        if path.name.startswith(".") or not (path / MANIFEST).is_file():
            continue
        manifest = read_manifest(path)
        mtime = datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
        created, order[path.name] = registered.get(path.name, (mtime, len(history)))
        entries.append(
            ModelEntry(path.name, manifest.name, manifest.kind, created, path.name == current, path, headline(path))
        )
    # Times have whole seconds; within one second, registration order decides.
    return sorted(entries, key=lambda e: (e.created, order[e.version], e.version))
