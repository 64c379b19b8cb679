"""ModelHolder: reloads on a registry promotion, keeps serving through a broken bundle, watches the pointer."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from serving.models import ModelHolder
from triage.bundle import MANIFEST
from triage.pipeline import Triager
from triage.runtime import load_triager
from triage.settings import Settings

T = TypeVar("T")
TEXT = "信用卡被盗刷了，还在扣款"


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def add_version(registry: Path, tiny_bundle: Path, version: str) -> Path:
    """A copy of the tiny bundle registered under `version`, its manifest saying so."""
    target = registry / version
    shutil.copytree(tiny_bundle, target)
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    manifest["version"] = version
    (target / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return target


def promote(registry: Path, version: str) -> None:
    (registry / "CURRENT").write_text(version + "\n", encoding="utf-8")


def version_of(holder: ModelHolder) -> str | None:
    return holder.current.model_info["version"] if holder.current is not None else None


def serving(holder: ModelHolder) -> Triager:
    if holder.current is None:
        raise AssertionError("no model is serving")
    return holder.current


@pytest.fixture
def registry_settings(tmp_path: Path, tiny_bundle: Path) -> Settings:
    settings = Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)})
    for version in ("v1", "v2"):
        add_version(settings.registry_dir, tiny_bundle, version)
    promote(settings.registry_dir, "v1")
    return settings


def test_reload_picks_up_a_promotion(registry_settings: Settings) -> None:
    holder = ModelHolder(registry_settings)
    swapped: list[Triager] = []
    holder.on_change.append(swapped.append)

    async def main() -> None:
        first = await holder.reload(force=True)
        assert first.changed and first.previous is None and first.error is None
        assert first.current == serving(holder).model_info
        assert version_of(holder) == "v1"
        old = holder.current
        unchanged = await holder.reload()
        assert not unchanged.changed and holder.current is old

        promote(registry_settings.registry_dir, "v2")
        second = await holder.reload()
        assert second.changed
        assert second.previous is not None and second.previous["version"] == "v1"
        assert second.current is not None and second.current["version"] == "v2"
        assert holder.path == registry_settings.registry_dir / "v2"
        # A request that took the old model before the swap still completes with it.
        assert old is not None and old.triage(TEXT).model["version"] == "v1"

    run(main)
    assert [t.model_info["version"] for t in swapped] == ["v1", "v2"]


def test_forced_reload_swaps_even_when_nothing_changed(registry_settings: Settings) -> None:
    holder = ModelHolder(registry_settings)

    async def main() -> None:
        await holder.reload(force=True)
        old = holder.current
        outcome = await holder.reload(force=True)
        assert outcome.changed and holder.current is not old
        assert outcome.previous == outcome.current

    run(main)


def test_broken_bundle_keeps_the_old_model(registry_settings: Settings) -> None:
    registry = registry_settings.registry_dir
    broken = registry / "v3"
    broken.mkdir()
    (broken / MANIFEST).write_text("{not json", encoding="utf-8")
    calls: list[Path] = []

    def counting_loader(settings: Settings) -> Triager:
        calls.append(settings.model_path())
        return load_triager(settings)

    holder = ModelHolder(registry_settings, loader=counting_loader)

    async def main() -> None:
        await holder.reload(force=True)
        promote(registry, "v3")
        outcome = await holder.reload()
        assert not outcome.changed
        assert outcome.error is not None and "v3" in outcome.error
        assert version_of(holder) == "v1"
        assert outcome.to_dict()["current"] == serving(holder).model_info
        # The same broken target is not loaded again on every poll ...
        assert (await holder.reload()).error is None
        assert calls.count(broken) == 1
        # ... but is when it is repaired.
        shutil.rmtree(broken)
        add_version(registry, registry / "v2", "v3")
        repaired = await holder.reload()
        assert repaired.changed and version_of(holder) == "v3"

    run(main)


def test_missing_bundle_is_an_error_not_a_crash(tmp_path: Path) -> None:
    holder = ModelHolder(Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)}))
    outcome = run(lambda: holder.reload(force=True))
    assert not outcome.changed and outcome.error is not None
    assert holder.current is None


def test_loading_runs_off_the_event_loop(registry_settings: Settings) -> None:
    started = threading.Event()

    def slow_loader(settings: Settings) -> Triager:
        started.set()
        time.sleep(0.3)
        return load_triager(settings)

    holder = ModelHolder(registry_settings, loader=slow_loader)

    async def main() -> None:
        await holder.reload(force=True)
        old = holder.current
        promote(registry_settings.registry_dir, "v2")
        reloading = asyncio.create_task(holder.reload())
        ticks = 0
        while not reloading.done():
            await asyncio.sleep(0.01)
            ticks += 1
            if started.is_set() and not reloading.done():
                assert holder.current is old  # still serving the old model mid-load
        assert ticks >= 10
        assert (await reloading).changed and version_of(holder) == "v2"

    run(main)


def test_watcher_picks_up_a_pointer_change_within_seconds(registry_settings: Settings) -> None:
    holder = ModelHolder(registry_settings)

    async def main() -> float:
        await holder.reload(force=True)
        watcher = asyncio.create_task(holder.watch(interval_s=0.05))
        try:
            await asyncio.sleep(0.15)
            assert version_of(holder) == "v1"
            promote(registry_settings.registry_dir, "v2")
            start = time.monotonic()
            while version_of(holder) != "v2":
                assert time.monotonic() - start < 2.0, "the watcher did not pick up the promotion"
                await asyncio.sleep(0.01)
            return time.monotonic() - start
        finally:
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watcher

    assert run(main) < 2.0


def test_watcher_keeps_a_given_triager_until_the_disk_changes(
    registry_settings: Settings, tiny_triager: Triager
) -> None:
    holder = ModelHolder(registry_settings, triager=tiny_triager)

    async def main() -> None:
        watcher = asyncio.create_task(holder.watch(interval_s=0.02))
        await asyncio.sleep(0.15)
        assert holder.current is tiny_triager
        promote(registry_settings.registry_dir, "v2")
        for _ in range(200):
            if version_of(holder) == "v2":
                break
            await asyncio.sleep(0.01)
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
        assert version_of(holder) == "v2"

    run(main)
