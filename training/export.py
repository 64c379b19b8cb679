"""ONNX export of the multi-task model: fp32, and int8 with dynamic per-channel quantization."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from training.encoder import MultiTaskModel
from triage import HEADS

OPSET = 17


def export_fp32(model: MultiTaskModel, path: Path) -> Path:
    """Graph inputs input_ids and attention_mask (int64, [batch, seq]); outputs one logit matrix per head."""
    model.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 10:] = 0
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    axes |= {h: {0: "batch"} for h in HEADS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=list(HEADS),
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize_int8(fp32: Path, int8: Path) -> Path:
    """Weights to int8 per output channel, activations quantized on the fly; the embedding table too."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    quantize_dynamic(
        str(fp32),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
    )
    return int8


SAMPLE_TEXTS = (
    "信用卡被盗刷了两万元，还在扣款",
    "手机银行更新以后一直闪退，登录不了",
    "催收天天打电话给我父母，我要投诉到12378",
    "理财经理说保本，结果亏了百分之二十",
    "表扬一下网点的大堂经理，服务很耐心",
    "请问信用卡年费怎么减免",
)


def requantize(bundle: Path) -> dict[str, float]:
    """Quantize the bundle's fp32 graph to int8 again; report how far int8 probabilities move."""
    import numpy as np

    from triage.baseline import softmax
    from triage.bundle import read_manifest
    from triage.onnx_model import session
    from triage.tokenizer import EncoderTokenizer

    manifest = read_manifest(bundle)
    files = manifest.extra.get("onnx", {})
    fp32, int8 = bundle / files["fp32"], bundle / files["int8"]
    quantize_int8(fp32, int8)
    tokenizer = EncoderTokenizer.from_dir(bundle / "tokenizer")
    ids, mask = tokenizer.encode_batch(list(SAMPLE_TEXTS), int(manifest.extra.get("max_length", 128)))
    a = session(fp32).run(list(HEADS), {"input_ids": ids, "attention_mask": mask})
    b = session(int8).run(list(HEADS), {"input_ids": ids, "attention_mask": mask})
    return {h: float(np.abs(softmax(x) - softmax(y)).max()) for h, x, y in zip(HEADS, a, b, strict=True)}
