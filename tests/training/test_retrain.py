"""Retraining and the promotion gate: a better model is promoted, a worse one refused (SPEC section 7)."""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from tests.conftest import FIXTURES
from training.baseline import BaselineOptions
from training.commands import add_commands
from training.data import DATASETS, jsonl_files, read_jsonl
from training.registry import current_version, list_models, read_history, rollback
from training.retrain import BuildSpec, Decision, RetrainError, RetrainResult, gate, leaking, retrain
from triage import HEADS
from triage.config import TriageConfig
from triage.settings import Settings

# One regularisation value: the gate is beside the model, and each build takes a second or two.
TFIDF = BuildSpec(model="tfidf", baseline=BaselineOptions(c_grid=(8.0,), max_iter=300))


@pytest.fixture(autouse=True)
def no_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bootstrap intervals are beside the gate, and the builders' 200 rounds would take most of each test."""
    monkeypatch.setattr("training.evaluate.bootstrap_macro_f1", lambda *a, **k: (0.0, 1.0))


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """The TF-IDF solver's small BLAS calls spin against each other with several threads (10x slower here)."""
    with threadpool_limits(1, user_api="blas"):
        yield


def run(registry: Path, config: TriageConfig, spec: BuildSpec = TFIDF, **kw: Any) -> RetrainResult:
    return retrain(registry, config, spec, rounds=20, log=lambda _: None, **kw)


def summary(f1: float | dict[str, float], p1: float | None = 0.9) -> dict[str, Any]:
    scores = f1 if isinstance(f1, dict) else dict.fromkeys(HEADS, f1)
    return {h: {"macro_f1": scores[h]} for h in HEADS} | {"p1_recall": p1, "n": 100}


@pytest.mark.parametrize(
    ("old", "new", "margin", "promote"),
    [
        (summary(0.80), summary(0.85), 0.01, True),  # better everywhere
        (summary(0.80), summary(0.80), 0.01, True),  # equal is not behind
        (summary(0.80), summary(0.791), 0.01, True),  # within the margin
        (summary(0.80), summary(0.79), 0.01, True),  # exactly the margin
        (summary(0.80), summary({**dict.fromkeys(HEADS, 0.9), "sentiment": 0.78}), 0.01, False),  # one head
        (summary(0.80), summary(0.78), 0.05, True),  # a looser margin
        (summary(0.80), summary(0.78), 0.0, False),  # no drop at all allowed
        (summary(0.80, p1=0.95), summary(0.90, p1=0.94), 0.01, False),  # P1 recall may not drop at all
        (summary(0.80, p1=0.95), summary(0.80, p1=0.95), 0.01, True),
        (summary(0.80, p1=None), summary(0.80, p1=None), 0.01, True),  # no P1 case to measure
        (None, summary(0.10), 0.01, True),  # nothing to beat: the first model is promoted
    ],
)
def test_gate(old: dict[str, Any] | None, new: dict[str, Any], margin: float, promote: bool) -> None:
    decision = gate(old, new, margin)
    assert decision.promote is promote
    assert decision.reasons
    if old is not None:  # one reason per head and one for P1 recall
        assert len(decision.reasons) == len(HEADS) + 1
        assert any(r.startswith("sentiment macro-F1") for r in decision.reasons)


def test_gate_names_what_failed() -> None:
    decision = gate(summary(0.80, p1=0.95), summary({**dict.fromkeys(HEADS, 0.8), "issue": 0.70}, p1=0.90))
    assert decision == Decision(False, decision.reasons)
    failed = [r for r in decision.reasons if not r.endswith("ok")]
    assert failed == [
        "issue macro-F1 0.800 -> 0.700 (-0.100): drops by more than the margin 0.010",
        "P1 recall 0.950 -> 0.900: drops",
    ]


def test_gate_refuses_bad_input() -> None:
    with pytest.raises(RetrainError, match="margin"):
        gate(summary(0.8), summary(0.8), -0.1)
    with pytest.raises(RetrainError, match="urgency"):
        gate(summary(0.8), {h: {"macro_f1": 0.8} for h in HEADS if h != "urgency"})


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A slice of the real corpus: a weak base (60 train cases), 300 more good cases, 200 with shuffled labels."""
    rows = sorted(read_jsonl(jsonl_files(DATASETS / "complaints")), key=lambda r: str(r["id"]))
    train = [r for r in rows if r["split"] == "train"]
    random.Random(0).shuffle(train)
    base = train[:60] + [r for r in rows if r["split"] == "dev"][::6] + [r for r in rows if r["split"] == "test"][::8]
    good = [{k: v for k, v in r.items() if k != "split"} for r in train[60:360]]
    noisy = [dict(r) for r in good[:200]]
    rng = random.Random(1)
    for head in HEADS:
        labels = [r[head] for r in noisy]
        rng.shuffle(labels)
        for r, label in zip(noisy, labels, strict=True):
            r[head] = label
    d = tmp_path_factory.mktemp("sample")
    return {
        "base": _write(d / "base.jsonl", base),
        "good": _write(d / "good.jsonl", good),
        "noisy": _write(d / "noisy.jsonl", noisy),
    }


def test_better_is_promoted_worse_is_refused_and_rollback_restores(
    sample: dict[str, Path], config: TriageConfig, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    data = [sample["base"]]
    first = run(registry, config, data=data, actor="ana")
    assert first.action == "promoted" and current_version(registry) == first.version

    better = run(registry, config, cases=[sample["good"]], data=data, actor="ana")
    assert better.action == "promoted", better.decision.reasons
    assert current_version(registry) == better.version
    c = better.comparison
    assert all(c["heads"][h]["delta"] > 0.05 for h in HEADS)  # 300 more good cases: better on every head
    assert c["p1_recall"]["new"] >= c["p1_recall"]["old"]
    assert c["training"]["cases_added"] == 300

    worse = run(registry, config, cases=[sample["noisy"]], data=data, actor="bo")
    assert worse.action == "refused"
    assert all(worse.comparison["heads"][h]["delta"] < -0.1 for h in HEADS)  # shuffled labels ruin every head
    assert sum("drops by more than the margin" in r for r in worse.decision.reasons) == len(HEADS)
    assert current_version(registry) == better.version  # the served model did not change

    # The refused bundle stays registered, with its comparison report.
    report = json.loads((worse.bundle / "reports" / "comparison.json").read_text(encoding="utf-8"))
    assert report["decision"]["action"] == "refused"
    assert report["old"]["bundle"] == str(registry / better.version)
    md = (worse.bundle / "reports" / "comparison.md").read_text(encoding="utf-8")
    assert "## Decision: refused" in md and "| category |" in md

    history = read_history(registry)
    decisions = [(e["event"], e["version"], e["previous"], e["actor"]) for e in history if e["event"] != "register"]
    assert decisions == [
        ("promote", first.version, None, "ana"),
        ("promote", better.version, first.version, "ana"),
        ("refuse", worse.version, better.version, "bo"),
    ]
    refusal = history[-1]
    assert set(refusal["figures"]["heads"]) == set(HEADS)
    assert {"old", "new", "delta"} <= set(refusal["figures"]["heads"]["category"])
    assert refusal["reasons"] == list(worse.decision.reasons)

    entries = {e.version: e for e in list_models(registry)}
    assert len(entries) == 3 and entries[better.version].promoted
    assert entries[better.version].metrics["category"] == pytest.approx(c["heads"]["category"]["new"])
    assert entries[worse.version].metrics["category"] == pytest.approx(report["heads"]["category"]["new"])

    rollback(registry, "ana", "the previous model was better for us")
    assert current_version(registry) == first.version


def test_no_promote_holds_a_model_that_passes(sample: dict[str, Path], config: TriageConfig, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    result = run(registry, config, data=[sample["base"]], allow_promotion=False)
    assert result.decision.promote and result.action == "held"
    assert current_version(registry) is None
    assert read_history(registry)[-1]["event"] == "hold"


def test_cases_that_copy_an_evaluation_case_are_left_out(
    sample: dict[str, Path], config: TriageConfig, tmp_path: Path
) -> None:
    base = read_jsonl([sample["base"]])
    test_case = next(r for r in base if r["split"] == "test")
    copy = {k: v for k, v in test_case.items() if k != "split"} | {"id": "fb-0001"}
    cases = _write(tmp_path / "cases.jsonl", [copy, {**copy, "id": "fb-0002", "text": "网点排队两个小时没人管"}])
    result = run(tmp_path / "registry", config, cases=[cases], data=[sample["base"]])
    assert result.comparison["training"]["cases_left_out"] == ["fb-0001"]
    assert result.comparison["training"]["cases_added"] == 1


def test_leaking_finds_near_copies_only() -> None:
    held = ["我的信用卡昨天被盗刷了三笔，我人在家卡也在身上，请尽快处理", "网点排队太久"]
    texts = ["我的信用卡昨天被盗刷了三笔，我人在家卡也在身上，请尽快处理！", "贷款提前还款手续费太高", "网点排队太久"]
    assert leaking(texts, held) == {0, 2}


def test_retrain_needs_an_evaluation_split(config: TriageConfig, tmp_path: Path) -> None:
    with pytest.raises(RetrainError, match="no test split"):
        run(tmp_path / "registry", config, data=[FIXTURES / "tiny.jsonl"])


def test_encoder_spec_needs_a_base_model() -> None:
    with pytest.raises(RetrainError, match="base_model"):
        BuildSpec(model="encoder")
    with pytest.raises(RetrainError, match="tfidf"):
        BuildSpec(model="bert")


def _cli(argv: list[str], tmp_path: Path) -> tuple[int, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="triage")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args, Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)})), args


@pytest.mark.slow
def test_retrain_command_exit_status_follows_the_decision(
    sample: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["retrain", "--model", "tfidf", "--data", str(sample["base"]), "--bootstrap", "20", "--actor", "cli"]
    assert _cli(common, tmp_path)[0] == 0
    assert "promoted" in capsys.readouterr().out
    code, _ = _cli([*common, "--cases", str(sample["noisy"])], tmp_path)
    out = capsys.readouterr().out
    assert code == 1 and "## Decision: refused" in out
    registry = Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)}).registry_dir
    assert [e["event"] for e in read_history(registry) if e["event"] != "register"] == ["promote", "refuse"]


def test_retrain_command_beats_the_default_bundle_when_nothing_is_promoted(
    sample: dict[str, Path], tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)})
    shutil.copytree(tiny_bundle, settings.default_bundle_dir)  # what serves before any promotion
    argv = ["retrain", "--model", "tfidf", "--data", str(sample["base"]), "--bootstrap", "20", "--no-promote"]
    code, _ = _cli(argv, tmp_path)
    assert code in (0, 1)  # held or refused: either way it was compared with the default bundle
    decision = read_history(settings.registry_dir)[-1]
    assert decision["event"] in ("hold", "refuse") and decision["figures"]["against"] == str(
        settings.default_bundle_dir
    )
    assert "against tfidf-baseline" in capsys.readouterr().out


def test_retrain_command_refuses_a_missing_cases_file(
    sample: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["retrain", "--model", "tfidf", "--data", str(sample["base"]), "--cases", str(tmp_path / "nope.jsonl")]
    assert _cli(argv, tmp_path)[0] == 2
    assert "no such cases file" in capsys.readouterr().err


@pytest.mark.slow
def test_retrain_with_the_encoder_recipe(
    sample: dict[str, Path], tiny_base: Path, config: TriageConfig, tmp_path: Path
) -> None:
    """The default model's recipe (fine-tuned tiny BERT + TF-IDF ensemble) goes through the same gate."""
    from training.finetune import RECIPES

    rows = read_jsonl([FIXTURES / "tiny.jsonl"])
    for i, r in enumerate(rows):
        r["split"] = "test" if i % 5 == 3 else r["split"]
    data = _write(tmp_path / "tiny.jsonl", rows)
    options = replace(RECIPES["cpu"], base_model=tiny_base, freeze_layers=1, epochs=1, max_length=48, batch_size=8)
    registry = tmp_path / "registry"
    first = run(registry, config, data=[data])
    spec = BuildSpec(model="encoder", recipe="cpu", finetune=options)
    result = run(registry, config, spec, data=[data], allow_promotion=False)
    assert result.comparison["old"]["kind"] == "tfidf"
    assert result.comparison["new"]["kind"] == "ensemble"
    assert result.action in ("held", "refused") and current_version(registry) == first.version
    assert (result.bundle / "model.int8.onnx").is_file()
