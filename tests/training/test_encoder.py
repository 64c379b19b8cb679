"""Multi-task fine-tuning, ONNX export and the encoder bundle, on a tiny random BERT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES
from triage import HEADS
from triage.baseline import softmax
from triage.bundle import load_bundle, read_manifest
from triage.config import TriageConfig
from triage.pipeline import Triager

torch = pytest.importorskip("torch")

from training.data import by_split, load_examples  # noqa: E402
from training.encoder import MultiTaskModel, load_encoder  # noqa: E402
from training.finetune import RECIPES, class_weights, finetune  # noqa: E402
from training.recipe import build_encoder_bundle  # noqa: E402

TEXTS = ["信用卡被盗刷了两万元", "手机银行登录不了", "催收天天打电话给我父母", "网点排队太久", "请问年费怎么减免"]


@pytest.fixture(scope="module")
def examples(config: TriageConfig):  # type: ignore[no-untyped-def]
    return load_examples([FIXTURES / "tiny.jsonl"], config)


@pytest.fixture(scope="module")
def bundle(tiny_base: Path, config: TriageConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("encoder") / "bundle"
    data = tmp_path_factory.mktemp("data") / "cases.jsonl"
    rows = [json.loads(line) for line in (FIXTURES / "tiny.jsonl").read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(rows):
        r["split"] = "test" if i % 5 == 3 else r["split"]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    options = replace(RECIPES["cpu"], base_model=tiny_base, freeze_layers=1, epochs=2, max_length=64, batch_size=8)
    build_encoder_bundle([data], out, config, options, "cpu", log=lambda _: None)
    return out


def test_cached_bottom_plus_top_equals_the_full_forward(tiny_base: Path) -> None:
    model = MultiTaskModel(load_encoder(tiny_base), {"category": 8, "issue": 10, "urgency": 4, "sentiment": 4}).eval()
    ids = torch.randint(5, 50, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0
    with torch.no_grad():
        full = model(ids, mask)
        split = model.top(model.bottom(ids, mask, 1), mask, 1)
    for a, b in zip(full, split, strict=True):
        torch.testing.assert_close(a, b)


def test_freeze_trains_only_the_top(tiny_base: Path) -> None:
    model = MultiTaskModel(load_encoder(tiny_base), {"category": 8, "issue": 10, "urgency": 4, "sentiment": 4})
    model.freeze(1)
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert all(p.requires_grad for p in model.heads.parameters())


@pytest.mark.parametrize("freeze", [0, 1])
def test_finetune_learns_and_keeps_the_best_epoch(tiny_base: Path, examples, config: TriageConfig, freeze: int) -> None:  # type: ignore[no-untyped-def]
    options = replace(
        RECIPES["cpu"],
        base_model=tiny_base,
        freeze_layers=freeze,
        epochs=3,
        patience=3,
        max_length=64,
        batch_size=8,
        lr=3e-3,
        head_lr=3e-2,
    )
    train = by_split(examples, "train")
    _, _, report = finetune(train, by_split(examples, "dev"), config, options, progress=lambda _: None)
    history = report["history"]
    assert isinstance(history, list) and len(history) == 3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = max(history, key=lambda h: h["dev_mean"])
    assert report["best_epoch"] == best["epoch"]


def test_class_weights_favour_rare_labels() -> None:
    w = class_weights(np.array([0, 0, 0, 0, 0, 0, 1, 2]), 4)
    assert w[1] > w[0] and w[0] == pytest.approx(1 / 3)
    assert w[3] == pytest.approx(w[1])  # an absent label is weighted as if it had one case


def test_bundle_serves_through_the_pipeline(bundle: Path, config: TriageConfig) -> None:
    manifest = read_manifest(bundle)
    assert manifest.kind == "ensemble"
    assert set(manifest.extra["onnx"]) == {"int8", "fp32"}
    assert set(manifest.thresholds) == set(manifest.temperatures) == set(HEADS)
    assert (bundle / "MODEL_CARD.md").read_text(encoding="utf-8").startswith("# Model card")
    assert (bundle / "reports" / "reliability_category.png").stat().st_size > 1000
    assert (bundle / "reports" / "confusion_issue.png").stat().st_size > 1000
    result = Triager(config, load_bundle(bundle)).triage("信用卡被盗刷了两万元，还在扣款")
    assert result.urgency.label == "P1" and result.model["name"].startswith("e5-small-zh-cpu")
    assert result.evidence  # from the TF-IDF part of the ensemble


def test_onnx_matches_torch(bundle: Path, tiny_base: Path) -> None:
    """fp32 ONNX equals the fine-tuned torch graph; int8 stays close to fp32."""
    import onnxruntime as ort

    from triage.tokenizer import EncoderTokenizer

    tokenizer = EncoderTokenizer.from_dir(bundle / "tokenizer")
    ids, mask = tokenizer.encode_batch(TEXTS, 64)
    fp32 = ort.InferenceSession(str(bundle / "model.fp32.onnx")).run(
        list(HEADS), {"input_ids": ids, "attention_mask": mask}
    )
    int8 = ort.InferenceSession(str(bundle / "model.int8.onnx")).run(
        list(HEADS), {"input_ids": ids, "attention_mask": mask}
    )
    # A 32-wide random net quantizes coarsely; the real model's int8 parity is measured in bench/.
    for a, b in zip(fp32, int8, strict=True):
        diff = np.abs(softmax(a) - softmax(b))
        assert diff.mean() < 0.1
    assert all(np.isfinite(a).all() for a in fp32)


def test_fp32_precision_is_selectable(bundle: Path, config: TriageConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    int8 = load_bundle(bundle).predict(TEXTS)
    monkeypatch.setenv("TRIAGE_ONNX_PRECISION", "fp32")
    fp32 = load_bundle(bundle).predict(TEXTS)
    for h in HEADS:
        diff = np.abs(int8[h] - fp32[h])
        assert diff.mean() < 0.1
        np.testing.assert_allclose(fp32[h].sum(1), 1.0, rtol=1e-6)
    # really two graphs (a head whose ensemble weight is 0 reads the TF-IDF model only)
    assert any(not np.array_equal(int8[h], fp32[h]) for h in HEADS)


@pytest.mark.slow
def test_train_cli_accepts_any_local_base_model(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    env = os.environ | {"TRIAGE_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "triage",
            "train",
            "--model",
            "encoder",
            "--base-model",
            str(tiny_base),
            "--data",
            str(FIXTURES / "tiny.jsonl"),
            "--output",
            str(out),
            "--epochs",
            "1",
            "--freeze-layers",
            "1",
            "--max-length",
            "48",
            "--no-tfidf",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_manifest(out).kind == "encoder"


def test_truncate_keeps_the_first_layers(tiny_base: Path) -> None:
    model = MultiTaskModel(load_encoder(tiny_base), {"category": 8, "issue": 10, "urgency": 4, "sentiment": 4}).eval()
    first = model.layers[0]
    model.truncate(1)
    assert len(model.layers) == 1 and model.layers[0] is first
    assert model.encoder.config.num_hidden_layers == 1
    ids = torch.randint(5, 50, (2, 9))
    with torch.no_grad():
        assert model(ids, torch.ones_like(ids))[0].shape == (2, 8)
    with pytest.raises(ValueError, match="keep_layers"):
        model.truncate(3)
