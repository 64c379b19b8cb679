"""Multi-task fine-tuning of the encoder (four heads at once).

Texts are grouped into batches of similar length (random batches almost
always pad to the cap). With `freeze_layers > 0` the frozen bottom runs once
over every text and its outputs are cached, so each epoch only pays for the
trainable top layers: that is what makes the CPU recipe fit in minutes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm import tqdm

from training.data import Example
from training.encoder import MultiTaskModel, load_encoder
from triage import HEADS
from triage.config import TriageConfig
from triage.onnx_model import chars_for
from triage.text import fit_to_budget
from triage.tokenizer import EncoderTokenizer

log = logging.getLogger("triage.training")


@dataclass(frozen=True)
class FinetuneOptions:
    base_model: Path | None = field(default=None, metadata={"help": "local Hugging Face checkpoint directory"})
    max_length: int = field(default=128, metadata={"help": "tokens per text; longer texts keep head and tail"})
    freeze_layers: int = field(default=10, metadata={"help": "encoder layers frozen (and cached); 0 trains all"})
    keep_layers: int = field(
        default=0, metadata={"help": "use at most the first N encoder layers (0: all); fewer is faster"}
    )
    epochs: int = field(default=5, metadata={"help": "maximum epochs"})
    patience: int = field(default=2, metadata={"help": "epochs without dev improvement before stopping"})
    batch_size: int = field(default=32, metadata={"help": "texts per step"})
    lr: float = field(default=8e-4, metadata={"help": "learning rate of the encoder layers"})
    head_lr: float = field(default=5e-3, metadata={"help": "learning rate of the four heads"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup: float = field(default=0.06, metadata={"help": "share of steps with a rising learning rate"})
    seed: int = field(default=13, metadata={"help": "random seed for batches, dropout and heads"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)"})


RECIPES: dict[str, FinetuneOptions] = {
    # The default, for a 2-core CPU within the 15-minute budget of build-default: the first 6 of
    # e5-small's 12 layers, the top 2 trained on cached states of the frozen 4. On the dev split it
    # scores as well as all 12 with the top 2 trained, and serves in half the time.
    "cpu": FinetuneOptions(keep_layers=6, freeze_layers=4),
    # For a GPU machine: everything trained, longer texts, more epochs.
    "full": FinetuneOptions(max_length=256, freeze_layers=0, epochs=6, patience=2, lr=5e-5, head_lr=1e-3),
}


@dataclass
class Batch:
    index: list[int]
    input_ids: torch.Tensor
    mask: torch.Tensor
    hidden: torch.Tensor | None = None


def make_batches(texts: Sequence[str], tokenizer: EncoderTokenizer, max_length: int, size: int) -> list[Batch]:
    """Batches of texts of similar length (sorted by length, then cut)."""
    budget = chars_for(max_length)
    prepared = [fit_to_budget(t, budget) for t in texts]
    order = sorted(range(len(prepared)), key=lambda i: len(prepared[i]))
    batches = []
    for start in range(0, len(order), size):
        index = order[start : start + size]
        ids, mask = tokenizer.encode_batch([prepared[i] for i in index], max_length)
        batches.append(Batch(index, torch.from_numpy(ids), torch.from_numpy(mask)))
    return batches


def class_weights(y: np.ndarray, n: int) -> torch.Tensor:
    """Balanced weights, clipped so a label with a handful of cases does not dominate."""
    counts = np.bincount(y, minlength=n).astype(np.float64)
    weights = len(y) / (n * np.maximum(counts, 1.0))
    return torch.tensor(np.clip(weights, 0.2, 5.0), dtype=torch.float32)


def predict_logits(model: MultiTaskModel, batches: Sequence[Batch], n: int, freeze: int) -> dict[str, np.ndarray]:
    model.eval()
    out = {h: np.zeros((n, len(model.labels_of(h))), dtype=np.float64) for h in HEADS}
    with torch.no_grad():
        for b in batches:
            hidden = b.hidden if b.hidden is not None else model.bottom(b.input_ids, b.mask, freeze)
            for h, z in zip(HEADS, model.top(hidden, b.mask, freeze), strict=True):
                out[h][b.index] = z.numpy()
    return out


def macro_f1(logits: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, float]:
    return {h: float(f1_score(y[h], logits[h].argmax(1), average="macro")) for h in HEADS}


def finetune(
    train: Sequence[Example],
    dev: Sequence[Example],
    config: TriageConfig,
    options: FinetuneOptions,
    log_file: Path | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[MultiTaskModel, EncoderTokenizer, dict[str, object]]:
    """Train; keep the weights of the epoch with the best mean dev macro-F1."""
    if options.base_model is None:
        raise ValueError("a base model directory is required")
    if options.threads:
        torch.set_num_threads(options.threads)
    random.seed(options.seed)
    np.random.seed(options.seed)
    torch.manual_seed(options.seed)
    labels = {h: list(config.label_ids(h)) for h in HEADS}
    tokenizer = EncoderTokenizer.from_dir(options.base_model)
    model = MultiTaskModel(load_encoder(options.base_model), {h: len(v) for h, v in labels.items()})
    if 0 < options.keep_layers < len(model.layers):
        model.truncate(options.keep_layers)
    freeze = min(options.freeze_layers, len(model.layers))
    model.freeze(freeze)

    def targets(examples: Sequence[Example]) -> dict[str, np.ndarray]:
        return {h: np.array([labels[h].index(e.labels[h]) for e in examples]) for h in HEADS}

    y_train, y_dev = targets(train), targets(dev)
    train_batches = make_batches([e.text for e in train], tokenizer, options.max_length, options.batch_size)
    dev_batches = make_batches([e.text for e in dev], tokenizer, options.max_length, options.batch_size * 2)
    if freeze:
        model.eval()
        with torch.no_grad():
            for b in tqdm(train_batches + dev_batches, desc=f"caching layers 0-{freeze - 1}", unit="batch"):
                b.hidden = model.bottom(b.input_ids, b.mask, freeze)
    losses = {h: torch.nn.CrossEntropyLoss(weight=class_weights(y_train[h], len(labels[h]))) for h in HEADS}
    head_params = [p for p in model.heads.parameters()]
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": encoder_params, "lr": options.lr}, {"params": head_params, "lr": options.head_lr}],
        weight_decay=options.weight_decay,
    )
    total = max(1, len(train_batches) * options.epochs)
    warmup = max(1, int(total * options.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    history: list[dict[str, object]] = []
    best: tuple[float, dict[str, torch.Tensor], int] | None = None
    stale = 0
    rng = random.Random(options.seed)
    log_lines: list[str] = []
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = list(range(len(train_batches)))
        rng.shuffle(order)
        running = 0.0
        bar = tqdm(order, desc=f"epoch {epoch}/{options.epochs}", unit="step")
        for step, k in enumerate(bar, 1):
            b = train_batches[k]
            hidden = b.hidden if b.hidden is not None else model.bottom(b.input_ids, b.mask, freeze)
            logits = model.top(hidden, b.mask, freeze)
            loss = sum(
                (losses[h](z, torch.from_numpy(y_train[h][b.index])) for h, z in zip(HEADS, logits, strict=True)),
                torch.zeros(()),
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head_params + encoder_params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            running += float(loss.detach())
            bar.set_postfix(loss=f"{running / step:.3f}")
        scores = macro_f1(predict_logits(model, dev_batches, len(dev), freeze), y_dev)
        mean = float(np.mean(list(scores.values())))
        entry = {"epoch": epoch, "train_loss": running / len(order), "dev_macro_f1": scores, "dev_mean": mean}
        history.append(entry)
        line = f"epoch {epoch}: loss {running / len(order):.4f}, dev macro-F1 " + ", ".join(
            f"{h} {s:.3f}" for h, s in scores.items()
        )
        progress(line)
        log_lines.append(line)
        if best is None or mean > best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = (mean, state, epoch)
            stale = 0
        else:
            stale += 1
            if stale >= options.patience:
                progress(f"early stop: no dev improvement for {stale} epoch(s)")
                break
    assert best is not None
    model.load_state_dict(best[1])
    model.eval()
    if log_file is not None:
        log_file.write_text("\n".join(log_lines) + "\n", encoding="utf-8")
    report: dict[str, object] = {
        "history": history,
        "best_epoch": best[2],
        "options": {k: str(v) for k, v in vars(replace(options)).items()},
        "frozen_layers": freeze,
        "layers": len(model.layers),
    }
    return model, tokenizer, report


def dev_logits(
    model: MultiTaskModel, tokenizer: EncoderTokenizer, texts: Sequence[str], max_length: int
) -> dict[str, np.ndarray]:
    """Logits of the full model (no cache), in the order of `texts`."""
    batches = make_batches(texts, tokenizer, max_length, 64)
    return predict_logits(model, batches, len(texts), 0)
