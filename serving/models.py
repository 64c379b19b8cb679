"""The model a worker process serves, and swapping it without dropping requests.

`ModelHolder` owns the current `Triager`. `reload()` loads the bundle that
`Settings.model_path()` names (TRIAGE_MODEL_DIR, else the registry's promoted
bundle, else the default one) completely, in a worker thread, before swapping
one reference: requests already holding the old Triager finish with it, and a
bundle that fails to load leaves the old model serving (the outcome says why).

`watch()` polls cheaply (the pointer file and the bundle's manifest timestamp,
a few stat calls) and reloads only when they change, so every worker process
picks up a `triage models promote` or `rollback` within seconds. `on_change`
callbacks run on the event loop after each swap (swap the batcher's runner,
update the model-info metric).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from triage.bundle import MANIFEST
from triage.pipeline import Triager
from triage.runtime import load_triager
from triage.settings import Settings

log = logging.getLogger("triage.serving.models")

# What a bundle on disk looks like to the watcher: its directory and its manifest's mtime (None: none yet).
Target = tuple[Path, int | None]


@dataclass(frozen=True)
class ReloadOutcome:
    """`changed`: a new Triager now serves. `error`: why loading failed (the previous model still serves)."""

    changed: bool
    previous: dict[str, str] | None
    current: dict[str, str] | None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class ModelHolder:
    """The current Triager of this process; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[Settings], Triager] = load_triager,
        triager: Triager | None = None,
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.on_change: list[Callable[[Triager], None]] = []
        self._current = triager
        self._path: Path | None = None
        # The last target a load was attempted for, so a broken bundle is not retried every poll.
        self._seen: Target | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Triager | None:
        return self._current

    @property
    def path(self) -> Path | None:
        """The bundle directory the current model was loaded from (None when it was given, not loaded)."""
        return self._path

    def target(self) -> Target:
        """Which bundle should serve now, read from disk (cheap)."""
        path = self.settings.model_path()
        try:
            mtime: int | None = (path / MANIFEST).stat().st_mtime_ns
        except OSError:
            mtime = None
        return path, mtime

    async def reload(self, force: bool = False) -> ReloadOutcome:
        """Load the bundle that should serve and swap it in; without `force`, only when it changed on disk."""
        async with self._lock:
            previous = self._current
            before = previous.model_info if previous is not None else None
            target = self.target()
            if not force and target == self._seen:
                return ReloadOutcome(changed=False, previous=before, current=before)
            self._seen = target
            path = target[0]
            # Pinned to the path just read: a pointer moving mid-load is picked up by the next poll.
            pinned = dataclasses.replace(self.settings, model_dir=path)
            try:
                triager = await asyncio.to_thread(self.loader, pinned)
            except Exception as exc:
                log.error("model at %s failed to load (still serving %s): %s", path, before, exc)
                return ReloadOutcome(changed=False, previous=before, current=before, error=f"{path}: {exc}")
            self._current, self._path = triager, path
            log.info("now serving %s from %s (was %s)", triager.model_info, path, before)
            for callback in self.on_change:
                try:
                    callback(triager)
                except Exception:
                    log.exception("on_change callback %r failed", callback)
            return ReloadOutcome(changed=True, previous=before, current=triager.model_info)

    async def watch(self, interval_s: float = 2.0) -> None:
        """Poll for a promoted, rolled-back or rebuilt bundle until cancelled."""
        if self._seen is None and self._current is not None:
            # A Triager given to the constructor serves until the disk changes from what it is now.
            self._seen = self.target()
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload(force=False)
            except Exception:
                # A poll must never end the watcher (e.g. a pointer file caught mid-write).
                log.exception("model watch poll failed")
