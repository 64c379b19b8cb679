"""Model bundles: self-contained directories that can be copied to an air-gapped machine.

A bundle holds `manifest.json` (format, kind, name, version, labels,
temperatures, thresholds, metrics) beside the model files of its kind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage import HEADS
from triage.classifier import Classifier
from triage.errors import ConfigError

FORMAT = "triage-bundle/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    kind: str
    name: str
    version: str
    labels: dict[str, list[str]]
    temperatures: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "labels": self.labels,
            "temperatures": self.temperatures,
            "thresholds": self.thresholds,
            "metrics": self.metrics,
        } | self.extra
        return json.dumps(body, ensure_ascii=False, indent=2)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"not a model bundle (no {MANIFEST}): {directory}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if raw.get("format") != FORMAT:
        raise ConfigError(f"{path}: unsupported bundle format {raw.get('format')!r}")
    missing = [h for h in HEADS if h not in raw.get("labels", {})]
    if missing:
        raise ConfigError(f"{path}: no labels for {missing}")
    known = {"format", "kind", "name", "version", "labels", "temperatures", "thresholds", "metrics"}
    return Manifest(
        kind=raw["kind"],
        name=raw["name"],
        version=str(raw["version"]),
        labels=raw["labels"],
        temperatures=raw.get("temperatures", {}),
        thresholds=raw.get("thresholds", {}),
        metrics=raw.get("metrics", {}),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def write_manifest(directory: Path, manifest: Manifest) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")


def load_bundle(directory: Path) -> Classifier:
    """Load any bundle kind; the caller checks its labels against the taxonomy."""
    manifest = read_manifest(directory)
    if manifest.kind == "tfidf":
        from triage.baseline import TfidfClassifier

        return TfidfClassifier.load(
            directory, manifest.labels, manifest.temperatures, manifest.thresholds, manifest.name, manifest.version
        )
    if manifest.kind in ("encoder", "ensemble"):
        return _load_encoder(directory, manifest)
    raise ConfigError(f"{directory}: unknown bundle kind {manifest.kind!r}")


def onnx_file(directory: Path, manifest: Manifest) -> Path:
    """The int8 graph by default; TRIAGE_ONNX_PRECISION=fp32 selects the fp32 one."""
    files = manifest.extra.get("onnx", {})
    precision = os.environ.get("TRIAGE_ONNX_PRECISION", "int8")
    if precision not in files:
        raise ConfigError(f"{directory}: no {precision} ONNX file in the bundle (has {sorted(files)})")
    return directory / files[precision]


def _load_encoder(directory: Path, manifest: Manifest) -> Classifier:
    from triage.baseline import TfidfClassifier
    from triage.onnx_model import EncoderClassifier, session
    from triage.tokenizer import EncoderTokenizer

    tfidf = None
    if manifest.kind == "ensemble":
        tfidf = TfidfClassifier.load(directory, manifest.labels, {}, {}, manifest.name, manifest.version)
    return EncoderClassifier(
        session(onnx_file(directory, manifest)),
        EncoderTokenizer.from_dir(directory / "tokenizer"),
        manifest.labels,
        int(manifest.extra.get("max_length", 128)),
        manifest.temperatures,
        manifest.thresholds,
        manifest.name,
        manifest.version,
        tfidf=tfidf,
        weights=manifest.extra.get("ensemble_weights", {}),
    )
