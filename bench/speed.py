"""Serving speed on this machine: one complaint through the whole pipeline (p50/p99), batch
throughput, int8 vs fp32 ONNX, the TF-IDF baseline, torch eager, and the cost of evidence.

    .venv/bin/python -m bench.speed [--bundle DIR] [--name NAME] [--baseline DIR] [--runs 300]

Ratios are taken against the TF-IDF baseline measured in the same run (machines are noisy).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from bench.common import machine, timings, write
from triage.bundle import load_bundle
from triage.config import load_config
from triage.pipeline import Triager, TriageRequest
from triage.settings import Settings

# A 100-character complaint, as the targets are stated.
TEXT = (
    "我的信用卡尾号1234昨天晚上在外地被连续刷了三笔，一共一万二千元，我人在家卡也在身上，"
    "打客服电话排队足足半小时没人接，第二天去网点也说处理不了。请尽快冻结并退回被盗刷的钱，不然我就向12378投诉。"
)
BATCH = 32


def pipeline_figures(triager: Triager, runs: int) -> dict[str, Any]:
    single = timings(lambda: triager.triage(TEXT), runs)
    # 100-character complaints that differ (the text rotated), so no two are the same input.
    texts = [TEXT[i:] + TEXT[:i] for i in range(BATCH)]
    requests = [TriageRequest(t) for t in texts]
    batch = timings(lambda: triager.triage_batch(requests), max(10, runs // 10), warmup=3)
    model_only = timings(lambda: triager.classifier.predict([TEXT]), runs)
    return {
        "single": single,
        "model_only": model_only,
        "batch32": batch | {"texts_per_s": BATCH / (batch["p50_ms"] / 1000)},
    }


def evidence_cost(triager: Triager, runs: int) -> dict[str, float]:
    with_evidence = timings(lambda: triager.triage(TEXT), runs)["p50_ms"]
    original = triager.classifier.evidence
    triager.classifier.evidence = lambda *a, **k: []  # type: ignore[method-assign]
    try:
        without = timings(lambda: triager.triage(TEXT), runs)["p50_ms"]
    finally:
        triager.classifier.evidence = original  # type: ignore[method-assign]
    return {"p50_with_ms": with_evidence, "p50_without_ms": without, "added": with_evidence / without - 1}


def torch_eager(bundle: Path, runs: int) -> dict[str, Any] | None:
    """The same architecture in torch fp32 eager mode (random heads: speed only)."""
    try:
        import torch

        from training.encoder import MultiTaskModel, load_encoder
        from triage.bundle import read_manifest
        from triage.tokenizer import EncoderTokenizer
    except ImportError:
        return None
    settings = Settings.from_env()
    if not (settings.base_model_dir / "config.json").exists():
        return None
    m = read_manifest(bundle)
    model = MultiTaskModel(load_encoder(settings.base_model_dir), {h: len(v) for h, v in m.labels.items()}).eval()
    tok = EncoderTokenizer.from_dir(bundle / "tokenizer")
    ids, mask = tok.encode_batch([TEXT], int(m.extra.get("max_length", 128)))
    ti, tm = torch.from_numpy(ids), torch.from_numpy(mask)

    def run() -> None:
        with torch.no_grad():
            model(ti, tm)

    return timings(run, max(20, runs // 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = Settings.from_env()
    parser.add_argument("--name", default="speed", help="report name under bench/reports/ (default: speed)")
    parser.add_argument("--bundle", type=Path, default=settings.default_bundle_dir)
    parser.add_argument("--baseline", type=Path, help="a TF-IDF bundle (default: built by bench.quality)")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    config = load_config()
    baseline = args.baseline or Path(__file__).parent / "reports" / "tfidf-bundle"
    results: dict[str, Any] = {
        "machine": machine(),
        "text_chars": len(TEXT),
        "threads": os.environ.get("TRIAGE_ORT_THREADS", "0"),
    }
    results["tfidf"] = pipeline_figures(Triager(config, load_bundle(baseline)), args.runs)
    for precision in ("int8", "fp32"):
        os.environ["TRIAGE_ONNX_PRECISION"] = precision
        triager = Triager(config, load_bundle(args.bundle))
        results[f"served_{precision}"] = pipeline_figures(triager, args.runs)
        if precision == "int8":
            results["evidence"] = evidence_cost(triager, args.runs)
            results["model"] = triager.model_info
    os.environ.pop("TRIAGE_ONNX_PRECISION", None)
    started = time.perf_counter()
    results["torch_eager_fp32_model_only"] = torch_eager(args.bundle, args.runs)
    results["torch_seconds"] = time.perf_counter() - started
    base = results["tfidf"]["single"]["p50_ms"]
    rows = [
        ("TF-IDF baseline", results["tfidf"]),
        ("served int8 ONNX", results["served_int8"]),
        ("served fp32 ONNX", results["served_fp32"]),
    ]
    md = [
        f"# Serving speed ({results['model']['name']} {results['model']['version']})",
        "",
        f"Machine: {results['machine']}. One {len(TEXT)}-character complaint through the whole pipeline",
        "(masking, model, signals, routing, SLA, draft, evidence); batch = 32 different texts of the same length",
        f"(rotations of it) in one call; onnxruntime threads: {results['threads']} (0: one per core).",
        "",
        "| model | pipeline p50 | p99 | model only p50 | batch of 32 | vs TF-IDF p50 |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        md.append(
            f"| {name} | {r['single']['p50_ms']:.1f} ms | {r['single']['p99_ms']:.1f} ms | "
            f"{r['model_only']['p50_ms']:.1f} ms | {r['batch32']['texts_per_s']:.0f} texts/s | "
            f"{r['single']['p50_ms'] / base:.1f}x |"
        )
    if results["torch_eager_fp32_model_only"]:
        t = results["torch_eager_fp32_model_only"]
        md.append(f"| torch eager fp32 (model only) | - | - | {t['p50_ms']:.1f} ms | - | - |")
    e = results["evidence"]
    md += [
        "",
        f"Evidence (TF-IDF word contributions) adds {e['added']:.0%} to the int8 pipeline p50 "
        f"({e['p50_without_ms']:.1f} -> {e['p50_with_ms']:.1f} ms).",
    ]
    print(write(args.name, results, "\n".join(md) + "\n").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
