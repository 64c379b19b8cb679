"""The model registry: registration, promotion, rollback, history (SPEC sections 7 and 8)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from training.commands import add_commands
from training.registry import (
    HISTORY,
    POINTER,
    RegistryError,
    current_bundle,
    current_version,
    lineage,
    list_models,
    promote,
    read_history,
    record,
    register,
    rollback,
)
from triage import HEADS
from triage.errors import ConfigError
from triage.settings import Settings


def bundle(tmp_path: Path, tiny_bundle: Path, version: str, f1: float | None = None) -> Path:
    """A copy of the tiny TF-IDF bundle with its own manifest version and, optionally, test figures."""
    out = tmp_path / "built" / version
    shutil.copytree(tiny_bundle, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = version
    if f1 is not None:
        manifest["metrics"]["test"] = {h: {"macro_f1": f1} for h in HEADS} | {"p1_recall": 0.9, "n": 10}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "data" / "registry"


@pytest.fixture
def three(tmp_path: Path, tiny_bundle: Path, registry: Path) -> list[str]:
    return [register(bundle(tmp_path, tiny_bundle, v, f1), registry) for v, f1 in (("a", 0.7), ("b", 0.8), ("c", 0.9))]


def test_register_copies_the_bundle_under_its_manifest_version(
    tmp_path: Path, tiny_bundle: Path, registry: Path
) -> None:
    src = bundle(tmp_path, tiny_bundle, "20260101-120000")
    assert register(src, registry, actor="ana") == "20260101-120000"
    assert register(src, registry) == "20260101-120000-2"  # same bundle again: a fresh name, never overwritten
    assert src.is_dir()  # copied, not moved
    assert sorted(p.name for p in registry.iterdir()) == [".lock", "20260101-120000", "20260101-120000-2", HISTORY]
    assert (registry / "20260101-120000" / "vocab.json").read_bytes() == (src / "vocab.json").read_bytes()
    events = read_history(registry)
    assert [(e["event"], e["version"]) for e in events] == [
        ("register", "20260101-120000"),
        ("register", "20260101-120000-2"),
    ]
    assert events[0]["actor"] == "ana" and str(src) in events[0]["reasons"][0]
    assert current_version(registry) is None  # registering promotes nothing


def test_register_can_move_and_name_a_bundle(tmp_path: Path, tiny_bundle: Path, registry: Path) -> None:
    src = bundle(tmp_path, tiny_bundle, "x")
    assert register(src, registry, version="candidate-1", move=True) == "candidate-1"
    assert not src.exists() and (registry / "candidate-1" / "manifest.json").is_file()
    with pytest.raises(RegistryError, match="exists"):
        register(bundle(tmp_path, tiny_bundle, "y"), registry, version="candidate-1")


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", "", "CURRENT", "history.jsonl", "white space"])
def test_register_refuses_bad_version_names(tmp_path: Path, tiny_bundle: Path, registry: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="invalid version"):
        register(bundle(tmp_path, tiny_bundle, "v"), registry, version=name)


def test_register_refuses_what_is_not_a_bundle(tmp_path: Path, registry: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match=r"no manifest\.json"):
        register(tmp_path / "empty", registry)


def test_promote_points_current_at_the_version_and_serving_follows(three: list[str], registry: Path) -> None:
    event = promote(registry, "b", "first review passed", "ana")
    assert (registry / POINTER).read_text(encoding="utf-8") == "b\n"
    assert current_bundle(registry) == registry / "b"
    settings = Settings.from_env({"TRIAGE_DATA_DIR": str(registry.parent)})
    assert settings.model_path() == registry / "b"
    assert event["event"] == "promote" and event["previous"] is None and event["actor"] == "ana"
    assert event["reasons"] == ["first review passed"]
    assert event["figures"]["category"] == 0.8 and event["figures"]["p1_recall"] == 0.9  # the bundle's headline
    assert read_history(registry)[-1] == event
    promote(registry, "c", "better", "bo")
    assert read_history(registry)[-1]["previous"] == "b"
    assert not [p for p in registry.iterdir() if p.name.startswith(".CURRENT")]  # no temporary file left


def test_promote_refuses_unknown_or_current_versions(three: list[str], registry: Path) -> None:
    with pytest.raises(RegistryError, match="no version 'zz'"):
        promote(registry, "zz", "typo", "ana")
    with pytest.raises(RegistryError, match="invalid version"):
        promote(registry, "../a", "escape", "ana")
    promote(registry, "a", "ok", "ana")
    with pytest.raises(RegistryError, match="already"):
        promote(registry, "a", "again", "ana")
    assert [e["event"] for e in read_history(registry)].count("promote") == 1


def test_rollback_walks_back_through_promotions(three: list[str], registry: Path) -> None:
    for v in ("a", "b", "c"):
        promote(registry, v, "ok", "ana")
    event = rollback(registry, "bo", "c misroutes loans")
    assert current_version(registry) == "b"
    assert (event["event"], event["version"], event["previous"], event["actor"]) == ("rollback", "b", "c", "bo")
    assert event["reasons"] == ["c misroutes loans"]
    rollback(registry, "bo")
    assert current_version(registry) == "a"
    with pytest.raises(RegistryError, match="first promoted version"):
        rollback(registry, "bo")
    promote(registry, "c", "fixed", "ana")
    rollback(registry, "bo")  # back to what served before c, not to c's earlier predecessor
    assert current_version(registry) == "a"


def test_rollback_needs_a_promotion(three: list[str], registry: Path) -> None:
    with pytest.raises(RegistryError, match="nothing is promoted"):
        rollback(registry, "ana")


def test_lineage_is_a_stack_of_promotions() -> None:
    history = [
        {"event": "promote", "version": "a"},
        {"event": "refuse", "version": "x"},
        {"event": "promote", "version": "b"},
        {"event": "promote", "version": "c"},
        {"event": "rollback", "version": "b"},
        {"event": "promote", "version": "d"},
    ]
    assert lineage(history) == ["a", "b", "d"]


def test_record_keeps_refusals_without_touching_current(three: list[str], registry: Path) -> None:
    promote(registry, "a", "ok", "ana")
    event = record(registry, "refuse", "b", "gate", ["issue macro-F1 drops"], {"issue": -0.1})
    assert current_version(registry) == "a"
    assert (event["event"], event["version"], event["previous"], event["figures"]) == (
        "refuse",
        "b",
        "a",
        {"issue": -0.1},
    )
    with pytest.raises(RegistryError, match="promote and rollback"):
        record(registry, "promote", "b", "gate", [])


def test_list_models_shows_versions_promotion_and_test_figures(
    three: list[str], registry: Path, tmp_path: Path, tiny_bundle: Path
) -> None:
    promote(registry, "b", "ok", "ana")
    (registry / ".building-x").mkdir()  # a copy in progress is not a model
    (registry / "notes").mkdir()
    shutil.copytree(tiny_bundle, registry / "by-hand")  # copied in without register(): still listed
    entries = list_models(registry)
    assert [e.version for e in entries if e.version != "by-hand"] == ["a", "b", "c"]  # registration order
    assert {e.version for e in entries} == {"a", "b", "c", "by-hand"}
    b = next(e for e in entries if e.version == "b")
    assert b.promoted and not any(e.promoted for e in entries if e.version != "b")
    assert b.name == "tfidf-baseline" and b.kind == "tfidf" and b.path == registry / "b"
    assert b.metrics == {**dict.fromkeys(HEADS, 0.8), "p1_recall": 0.9, "n": 10}
    assert b.created.startswith("20")  # ISO time of registration
    assert next(e for e in entries if e.version == "by-hand").metrics == {}  # no test figures in its manifest


def test_list_models_of_a_missing_registry_is_empty(tmp_path: Path) -> None:
    assert list_models(tmp_path / "nothing") == []


def _cli(argv: list[str], data_dir: Path) -> int:
    parser = argparse.ArgumentParser(prog="triage")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args, Settings.from_env({"TRIAGE_DATA_DIR": str(data_dir)})))


def test_models_commands(three: list[str], registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = registry.parent
    assert _cli(["models", "promote", "a", "--reason", "baseline", "--actor", "ana"], data_dir) == 0
    assert _cli(["models", "promote", "c", "--reason", "better", "--actor", "ana"], data_dir) == 0
    assert "promoted c (previous: a)" in capsys.readouterr().out
    assert _cli(["models", "list"], data_dir) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["version", "name", "kind", "created"]
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and starred[0].split()[1] == "c" and "0.900" in starred[0]
    assert _cli(["models", "list", "--json"], data_dir) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["promoted"]) for r in rows] == [("a", False), ("b", False), ("c", True)]
    assert _cli(["models", "rollback", "--reason", "complaints from branches", "--actor", "bo"], data_dir) == 0
    assert "rolled back from c to a" in capsys.readouterr().out
    assert current_version(registry) == "a"
    assert read_history(registry)[-1]["reasons"] == ["complaints from branches"]


def test_models_commands_report_errors_in_one_line(
    three: list[str], registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["models", "rollback"], registry.parent) == 2
    assert capsys.readouterr().err.strip() == "triage: nothing is promoted: nothing to roll back"
    assert _cli(["models", "promote", "nope", "--reason", "x"], registry.parent) == 2


def test_promote_command_refuses_a_bundle_the_service_would_refuse(three: list[str], registry: Path) -> None:
    manifest = json.loads((registry / "b" / "manifest.json").read_text(encoding="utf-8"))
    manifest["labels"]["category"][-1] = "crypto"
    (registry / "b" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ConfigError, match="crypto"):  # triage.cli turns it into one line and exit status 2
        _cli(["models", "promote", "b", "--reason", "x"], registry.parent)
    assert current_version(registry) is None


def test_models_list_with_an_empty_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["models", "list"], tmp_path) == 0
    assert "no registered models" in capsys.readouterr().out
