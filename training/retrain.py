"""`triage retrain`: the corpus plus exported cases -> a new bundle -> compared with the current one -> the gate.

Both bundles are evaluated on the same fixed split (the corpus test split), through
the whole pipeline, so urgency is scored on the final label as in `triage evaluate`.
A new bundle is promoted only when no head's macro-F1 falls more than a margin
below the current bundle's and P1 recall does not fall at all (SPEC section 7):
missing an emergency costs more than a few misrouted complaints.

Exported cases carry no split; they only ever train. A case that near-duplicates
a test case (5-gram Jaccard above 0.7, training.dedup) is left out, so the
evaluation split stays unseen and the comparison stays fair.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training import registry
from training.baseline import BaselineOptions
from training.build import build_baseline_bundle, corpus_paths
from training.data import by_split, case_text, jsonl_files, load_examples, read_jsonl
from training.dedup import near_duplicate_pairs
from training.evaluate import evaluate, summary
from triage import HEADS
from triage.bundle import load_bundle, read_manifest
from triage.config import TriageConfig
from triage.pii import mask_text
from triage.pipeline import Triager
from triage.text import normalize

if TYPE_CHECKING:
    from training.finetune import FinetuneOptions

DEFAULT_MARGIN = 0.01
EVAL_SPLIT = "test"
LEAK_JACCARD = 0.7
# Float noise must not turn "equal" into "dropped".
_TOLERANCE = 1e-9


class RetrainError(ValueError):
    """Retraining cannot start or compare: no corpus, no evaluation split, bad options or cases."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class BuildSpec:
    """How the new bundle is built: the same recipes as `triage train`."""

    model: str = field(default="encoder", metadata={"help": "encoder (fine-tuned, the default model) or tfidf"})
    recipe: str = field(default="cpu", metadata={"help": "encoder recipe name, recorded in the bundle"})
    finetune: FinetuneOptions | None = field(default=None, metadata={"help": "encoder options, base_model set"})
    ensemble: bool = field(default=True, metadata={"help": "combine the encoder with the TF-IDF model"})
    baseline: BaselineOptions | None = field(default=None, metadata={"help": "TF-IDF options (tfidf model)"})

    def __post_init__(self) -> None:
        if self.model not in ("encoder", "tfidf"):
            raise RetrainError(f"model must be 'encoder' or 'tfidf', not {self.model!r}")
        if self.model == "encoder" and (self.finetune is None or self.finetune.base_model is None):
            raise RetrainError("the encoder model needs FinetuneOptions with a base_model")


@dataclass(frozen=True)
class CasesUsed:
    files: tuple[str, ...]
    added: int
    left_out: tuple[str, ...]  # ids that near-duplicate an evaluation case


@dataclass(frozen=True)
class RetrainResult:
    version: str
    bundle: Path
    decision: Decision
    action: str  # promoted | held | refused
    comparison: dict[str, Any]


def _f1(s: Mapping[str, Any], head: str) -> float:
    try:
        return float(s[head]["macro_f1"])
    except (KeyError, TypeError) as exc:
        raise RetrainError(f"evaluation summary has no macro_f1 for {head}") from exc


def gate(old: Mapping[str, Any] | None, new: Mapping[str, Any], margin: float = DEFAULT_MARGIN) -> Decision:
    """Promote when no head's macro-F1 drops by more than `margin` and P1 recall does not drop.

    `old` and `new` are evaluation summaries (training.evaluate.summary); no `old` means
    nothing serves from the registry yet, and the first model is promoted.
    """
    if margin < 0:
        raise RetrainError(f"margin must be >= 0, not {margin}")
    if old is None:
        return Decision(True, ("no current model to compare with: the first model is promoted",))
    reasons, ok = [], True
    for head in HEADS:
        a, b = _f1(old, head), _f1(new, head)
        fails = b - a < -margin - _TOLERANCE
        ok &= not fails
        verdict = f"drops by more than the margin {margin:.3f}" if fails else "ok"
        reasons.append(f"{head} macro-F1 {a:.3f} -> {b:.3f} ({b - a:+.3f}): {verdict}")
    p_old, p_new = old.get("p1_recall"), new.get("p1_recall")
    if p_old is None or p_new is None:
        reasons.append("P1 recall not measured (no P1 case in the evaluation split)")
    else:
        fails = p_new < p_old - _TOLERANCE
        ok &= not fails
        reasons.append(f"P1 recall {p_old:.3f} -> {p_new:.3f}: {'drops' if fails else 'ok'}")
    return Decision(ok, tuple(reasons))


def build_bundle(
    spec: BuildSpec, data: list[Path], out_dir: Path, config: TriageConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """A bundle by `spec` (what `triage train` and `triage retrain` both build); returns its metrics."""
    if spec.model == "tfidf":
        return build_baseline_bundle(data, out_dir, config, spec.baseline, log=log)
    from training.recipe import build_encoder_bundle

    assert spec.finetune is not None  # checked in BuildSpec
    return build_encoder_bundle(data, out_dir, config, spec.finetune, spec.recipe, ensemble=spec.ensemble, log=log)


def leaking(texts: Sequence[str], held_out: Sequence[str], threshold: float = LEAK_JACCARD) -> set[int]:
    """Indices of `texts` that near-duplicate (or equal) one of `held_out`."""
    n = len(held_out)
    pairs = near_duplicate_pairs([*held_out, *texts], threshold)
    return {j - n for i, j, _ in pairs if i < n <= j}


def training_cases(paths: Sequence[Path], held_out: Sequence[str], out: Path) -> CasesUsed:
    """Exported cases as train-only rows in `out`; those that near-duplicate a held-out text are left out."""
    files = [f for p in paths for f in jsonl_files(p)]
    for f in files:
        if not f.is_file():
            raise RetrainError(f"no such cases file: {f}")
    rows = read_jsonl(files)
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "id" not in row:
            raise RetrainError(f"exported case {n} has no id")
    leaks = leaking([mask_text(normalize(case_text(r))) for r in rows], held_out)
    kept = [r | {"split": "train"} for i, r in enumerate(rows) if i not in leaks]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    return CasesUsed(tuple(str(f) for f in files), len(kept), tuple(str(rows[i]["id"]) for i in sorted(leaks)))


def _describe(bundle: Path, s: Mapping[str, Any]) -> dict[str, Any]:
    m = read_manifest(bundle)
    return {"bundle": str(bundle), "name": m.name, "version": m.version, "kind": m.kind, "summary": dict(s)}


def compare(
    old: dict[str, Any] | None, new: dict[str, Any], decision: Decision, action: str, margin: float
) -> dict[str, Any]:
    """The comparison report: per head macro-F1 old/new/delta, P1 recall old/new, the decision."""
    o, n = (old or {}).get("summary"), new["summary"]
    heads = {
        h: {
            "old": _f1(o, h) if o else None,
            "new": _f1(n, h),
            "delta": _f1(n, h) - _f1(o, h) if o else None,
        }
        for h in HEADS
    }
    return {
        "split": EVAL_SPLIT,
        "n": n.get("n"),
        "margin": margin,
        "old": old,
        "new": new,
        "heads": heads,
        "p1_recall": {"old": o.get("p1_recall") if o else None, "new": n.get("p1_recall")},
        "decision": {"promote": decision.promote, "action": action, "reasons": list(decision.reasons)},
    }


def _num(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.3f}" if signed else f"{x:.3f}")


def comparison_markdown(c: Mapping[str, Any]) -> str:
    old, new = c["old"], c["new"]
    against = f"{old['name']} {old['version']}" if old else "nothing (first model)"
    lines = [
        f"# Retraining: {new['name']} {new['version']} against {against}",
        "",
        f"Evaluated on the {c['split']} split ({c['n']} cases), both bundles through the whole pipeline.",
        f"Gate: no head's macro-F1 may drop by more than {c['margin']:.3f}; P1 recall may not drop.",
        "",
        "| head | macro-F1 old | macro-F1 new | delta |",
        "|---|---|---|---|",
    ]
    for head, h in c["heads"].items():
        lines.append(f"| {head} | {_num(h['old'])} | {_num(h['new'])} | {_num(h['delta'], True)} |")
    p1 = c["p1_recall"]
    lines += ["", f"P1 recall (final urgency): old {_num(p1['old'])}, new {_num(p1['new'])}", ""]
    lines += [f"## Decision: {c['decision']['action']}", ""] + [f"- {r}" for r in c["decision"]["reasons"]]
    training = c.get("training")
    if training:
        lines += [
            "",
            "## Training data",
            "",
            f"- corpus: {', '.join(training['data'])}",
            f"- exported cases: {training['cases_added']} added from {', '.join(training['cases']) or 'no file'}",
            f"- left out as near-duplicates of evaluation cases: {len(training['cases_left_out'])}",
        ]
    return "\n".join(lines) + "\n"


def write_comparison(c: Mapping[str, Any], bundle_dir: Path) -> None:
    reports = bundle_dir / "reports"
    reports.mkdir(exist_ok=True)
    (reports / registry.COMPARISON).write_text(json.dumps(c, ensure_ascii=False, indent=2), encoding="utf-8")
    (reports / "comparison.md").write_text(comparison_markdown(c), encoding="utf-8")


def _evaluate(bundle: Path, examples: Sequence[Any], config: TriageConfig, rounds: int) -> dict[str, Any]:
    return summary(evaluate(Triager(config, load_bundle(bundle)), examples, rounds=rounds))


def retrain(
    registry_dir: Path,
    config: TriageConfig,
    spec: BuildSpec,
    cases: Sequence[Path] = (),
    data: Sequence[Path] | None = None,
    current: Path | None = None,
    margin: float = DEFAULT_MARGIN,
    allow_promotion: bool = True,
    actor: str = "",
    rounds: int = 200,
    log: Callable[[str], None] = print,
) -> RetrainResult:
    """Build, compare, gate, register; promote when the gate passes and `allow_promotion` is set.

    `current` is the bundle to beat (default: the registry's promoted one). The new bundle
    is registered whatever the decision, so a refused model stays there for inspection.
    """
    if margin < 0:
        raise RetrainError(f"margin must be >= 0, not {margin}")
    corpus = list(data) if data is not None else corpus_paths()
    if not corpus:
        raise RetrainError("no corpus to train on (datasets/complaints, datasets/conversations)")
    held_out = by_split(load_examples(corpus, config), EVAL_SPLIT)
    if not held_out:
        raise RetrainError(f"the corpus has no {EVAL_SPLIT} split to compare the models on")
    current = current if current is not None else registry.current_bundle(registry_dir)
    if current is not None and not current.is_dir():
        raise RetrainError(f"no bundle at {current}")
    registry_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".retrain-", dir=registry_dir))
    try:
        extra = work / "cases.jsonl"
        used = training_cases(cases, [e.text for e in held_out], extra)
        log(f"{used.added} exported case(s) added to train; {len(used.left_out)} left out as evaluation duplicates")
        built = work / "bundle"
        build_bundle(spec, [*corpus, extra] if used.added else corpus, built, config, log)
        log(f"evaluating the new and the current bundle on {len(held_out)} {EVAL_SPLIT} cases")
        new = _describe(built, _evaluate(built, held_out, config, rounds))
        old = _describe(current, _evaluate(current, held_out, config, rounds)) if current else None
        decision = gate(old["summary"] if old else None, new["summary"], margin)
        action = "refused" if not decision.promote else "promoted" if allow_promotion else "held"
        comparison = compare(old, new, decision, action, margin)
        comparison["training"] = {
            "data": [str(p) for p in corpus],
            "cases": list(used.files),
            "cases_added": used.added,
            "cases_left_out": list(used.left_out),
        }
        write_comparison(comparison, built)
        version = registry.register(built, registry_dir, move=True, actor=actor)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {k: comparison[k] for k in ("heads", "p1_recall", "margin", "n")} | {
        "against": old["bundle"] if old else None
    }
    reasons = list(decision.reasons)
    if action == "promoted":
        registry.promote(registry_dir, version, reasons, actor, figures)
    else:
        held = [*reasons, "passed the gate; not promoted on request (--no-promote)"] if decision.promote else reasons
        registry.record(registry_dir, "refuse" if action == "refused" else "hold", version, actor, held, figures)
    log(f"{version}: {action}")
    for r in decision.reasons:
        log(f"  {r}")
    return RetrainResult(version, registry_dir / version, decision, action, comparison)
