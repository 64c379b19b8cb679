"""`triage audit-labels`: cases whose label is probably wrong, for a person to review.

Every case is predicted by a TF-IDF model (training.baseline) trained on the other
folds only (k-fold, out-of-fold), so no case is scored by a model that learnt its
own label. The rule, per case and head, is confident disagreement:

    predicted != given  and  p(predicted) >= min_confidence  and  p(given) <= max_given

A model that merely hesitates between two plausible labels (angry or negative)
is not enough: it must be sure of another label and find the given one unlikely.
The probabilities are temperature-scaled first (one temperature per head, fitted
on the out-of-fold predictions against the given labels), so "sure" and
"unlikely" mean the same whether the model learnt from 400 cases or 4,000.
Suspects are listed most suspicious first (largest p(predicted) - p(given)).
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from training.baseline import BaselineOptions, train_baseline
from training.calibration import fit_temperature
from training.data import Example
from triage import HEADS
from triage.baseline import softmax
from triage.config import TriageConfig

REVIEW_JSONL = "label_review.jsonl"
REVIEW_MD = "label_review.md"
MD_TEXT_CHARS = 100


class AuditError(ValueError):
    """The audit cannot run on this input (too few cases for the folds, bad options)."""


@dataclass(frozen=True)
class AuditOptions:
    folds: int = field(default=5, metadata={"help": "k of the k-fold out-of-fold predictions"})
    min_confidence: float = field(default=0.5, metadata={"help": "flag only when p(predicted) is at least this"})
    max_given: float = field(default=0.1, metadata={"help": "flag only when p(given label) is at most this"})
    heads: tuple[str, ...] = field(default=HEADS, metadata={"help": "heads to audit"})
    seed: int = field(default=0, metadata={"help": "seed of the fold assignment"})

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise AuditError(f"folds must be at least 2, not {self.folds}")
        if not (0 <= self.max_given < self.min_confidence <= 1):
            raise AuditError("need 0 <= max_given < min_confidence <= 1")
        unknown = set(self.heads) - set(HEADS)
        if unknown or not self.heads:
            raise AuditError(f"heads must be among {', '.join(HEADS)}")


@dataclass(frozen=True)
class Suspect:
    id: str
    head: str
    given: str
    suggested: str
    p_given: float
    p_suggested: float
    text: str  # masked, as every output of this project
    split: str

    @property
    def score(self) -> float:
        return self.p_suggested - self.p_given


def out_of_fold(
    examples: Sequence[Example], config: TriageConfig, folds: int = 5, seed: int = 0
) -> dict[str, NDArray[np.float64]]:
    """Per head, an (n, labels) array of probabilities from models that did not see the row."""
    if len(examples) < folds:
        raise AuditError(f"{len(examples)} cases cannot be split into {folds} folds")
    order = np.random.default_rng(seed).permutation(len(examples))
    fold = np.empty(len(examples), dtype=int)
    fold[order] = np.arange(len(examples)) % folds
    probs = {h: np.zeros((len(examples), len(config.label_ids(h)))) for h in HEADS}
    # Each fold's solver makes many small BLAS calls; with several BLAS threads they spin
    # against each other (measured 10-25x slower on a 2-core machine, same results).
    with threadpool_limits(1, user_api="blas"):
        for k in range(folds):
            held = np.flatnonzero(fold == k).tolist()
            train = [examples[i] for i in np.flatnonzero(fold != k).tolist()]
            # No dev split: one regularisation value, the same in every fold; calibrate() scales afterwards.
            model, _ = train_baseline(train, [], config, BaselineOptions())
            p = model.predict([examples[i].text for i in held])
            for h in HEADS:
                probs[h][held] = p[h]
    return probs


def _given(examples: Sequence[Example], config: TriageConfig, head: str) -> NDArray[np.int64]:
    labels = config.label_ids(head)
    return np.array([labels.index(e.labels[head]) for e in examples], dtype=np.int64)


def calibrate(
    examples: Sequence[Example], probs: Mapping[str, NDArray[np.float64]], config: TriageConfig
) -> dict[str, NDArray[np.float64]]:
    """Temperature-scaled probabilities, one temperature per head fitted against the given labels.

    The labels being audited are mostly right, and a single temperature cannot fit the few
    wrong ones; it only makes the thresholds mean the same for a weak and a strong model.
    """
    out = {}
    for head, p in probs.items():
        logits = np.log(np.clip(p, 1e-12, 1.0))
        out[head] = softmax(logits, fit_temperature(logits, _given(examples, config, head)))
    return out


def flag(
    examples: Sequence[Example],
    probs: Mapping[str, NDArray[np.float64]],
    config: TriageConfig,
    options: AuditOptions,
) -> list[Suspect]:
    """Apply the confident-disagreement rule; most suspicious first."""
    suspects = []
    for head in options.heads:
        labels = config.label_ids(head)
        p = probs[head]
        given = _given(examples, config, head)
        pred = p.argmax(1)
        rows = np.arange(len(examples))
        hit = (pred != given) & (p[rows, pred] >= options.min_confidence) & (p[rows, given] <= options.max_given)
        for i in np.flatnonzero(hit).tolist():
            e = examples[i]
            suspects.append(
                Suspect(
                    e.id,
                    head,
                    labels[given[i]],
                    labels[pred[i]],
                    round(float(p[i, given[i]]), 4),
                    round(float(p[i, pred[i]]), 4),
                    e.text,
                    e.split,
                )
            )
    return sorted(suspects, key=lambda s: (-s.score, s.id, s.head))


def audit(examples: Sequence[Example], config: TriageConfig, options: AuditOptions | None = None) -> list[Suspect]:
    options = options or AuditOptions()
    probs = out_of_fold(examples, config, options.folds, options.seed)
    return flag(examples, calibrate(examples, probs, config), config, options)


def _cell(text: str) -> str:
    one_line = " / ".join(text.split("\n")).replace("|", "\\|")
    return one_line if len(one_line) <= MD_TEXT_CHARS else one_line[:MD_TEXT_CHARS] + "…"


def review_markdown(suspects: Sequence[Suspect], n_cases: int, options: AuditOptions) -> str:
    lines = [
        "# Label review: likely mislabelled cases",
        "",
        f"{len(suspects)} suspect label(s) among {n_cases} cases, heads {', '.join(options.heads)}.",
        f"Rule: out-of-fold TF-IDF predictions ({options.folds} folds, temperature-scaled) disagree with the given label,",
        f"with p(suggested) >= {options.min_confidence} and p(given) <= {options.max_given}. Most suspicious first.",
        "",
        "| # | id | head | given | suggested | p(given) | p(suggested) | text (masked) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, s in enumerate(suspects, 1):
        lines.append(
            f"| {n} | {s.id} | {s.head} | {s.given} | {s.suggested} | {s.p_given:.3f} | {s.p_suggested:.3f} | "
            f"{_cell(s.text)} |"
        )
    return "\n".join(lines) + "\n"


def write_review(suspects: Sequence[Suspect], out_dir: Path, n_cases: int, options: AuditOptions) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl, md = out_dir / REVIEW_JSONL, out_dir / REVIEW_MD
    jsonl.write_text(
        "".join(json.dumps(asdict(s) | {"score": round(s.score, 4)}, ensure_ascii=False) + "\n" for s in suspects),
        encoding="utf-8",
    )
    md.write_text(review_markdown(suspects, n_cases, options), encoding="utf-8")
    return jsonl, md


def plant_flips(
    examples: Sequence[Example], config: TriageConfig, rate: float, heads: Sequence[str] = HEADS, seed: int = 0
) -> tuple[list[Example], set[tuple[str, str]]]:
    """A copy with `rate` of each head's labels replaced by another label at random, and the (id, head) flipped.

    For measuring the audit: how many planted errors it finds, and how many of its flags are planted.
    """
    if not 0 < rate < 1:
        raise AuditError(f"rate must be between 0 and 1, not {rate}")
    if len({e.id for e in examples}) != len(examples):
        raise AuditError("planting flips needs unique case ids")
    rng = random.Random(seed)
    labels = [dict(e.labels) for e in examples]
    planted: set[tuple[str, str]] = set()
    for head in heads:
        choices = config.label_ids(head)
        for i in rng.sample(range(len(examples)), round(rate * len(examples))):
            labels[i][head] = rng.choice([c for c in choices if c != labels[i][head]])
            planted.add((examples[i].id, head))
    return [replace(e, labels=lab) for e, lab in zip(examples, labels, strict=True)], planted


def planted_scores(suspects: Sequence[Suspect], planted: Collection[tuple[str, str]]) -> dict[str, float | int]:
    """Recall of the planted flips and the share of flags that are planted (a lower bound on
    precision: some unplanted flags are the corpus's own labelling errors)."""
    flagged = {(s.id, s.head) for s in suspects}
    found = len(flagged & set(planted))
    return {
        "planted": len(planted),
        "flagged": len(flagged),
        "found": found,
        "recall": found / len(planted) if planted else 0.0,
        "precision": found / len(flagged) if flagged else 0.0,
    }
