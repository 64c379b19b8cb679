"""The multi-task encoder: one pretrained encoder, four softmax heads over mean pooling.

The lower layers can be frozen and their outputs cached once (`bottom`), so
a CPU run trains only the top layers (`top`); `forward` runs both, as the
exported ONNX graph does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from triage import HEADS


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, seq] 0/1 -> [batch, 1, 1, seq] additive mask for the encoder layers."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class MultiTaskModel(nn.Module):
    def __init__(self, encoder: PreTrainedModel, n_labels: dict[str, int], dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({h: nn.Linear(hidden, n_labels[h]) for h in HEADS})
        self.n_labels = dict(n_labels)

    def labels_of(self, head: str) -> range:
        return range(self.n_labels[head])

    @property
    def layers(self) -> nn.ModuleList:
        layers = self.encoder.get_submodule("encoder.layer")  # BERT family: embeddings + encoder.layer
        assert isinstance(layers, nn.ModuleList)
        return layers

    def truncate(self, n_layers: int) -> None:
        """Keep only the first `n_layers` encoder layers: a shallower, faster model."""
        if not 0 < n_layers <= len(self.layers):
            raise ValueError(f"keep_layers must be within 1..{len(self.layers)}")
        del self.layers[n_layers:]
        self.encoder.config.num_hidden_layers = n_layers

    def freeze(self, n_layers: int) -> None:
        """Freeze the embeddings and the first `n_layers` encoder layers (0 freezes nothing)."""
        for p in self.encoder.parameters():
            p.requires_grad = n_layers == 0
        if n_layers == 0:
            return
        for layer in self.layers[n_layers:]:
            for p in layer.parameters():
                p.requires_grad = True

    def bottom(self, input_ids: torch.Tensor, mask: torch.Tensor, n_layers: int) -> torch.Tensor:
        """Hidden states after the embeddings and the first `n_layers` layers."""
        hidden = self.encoder.get_submodule("embeddings")(input_ids=input_ids)
        extended = additive_mask(mask, hidden.dtype)
        for layer in self.layers[:n_layers]:
            hidden = layer(hidden, attention_mask=extended)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden

    def top(self, hidden: torch.Tensor, mask: torch.Tensor, n_layers: int) -> tuple[torch.Tensor, ...]:
        extended = additive_mask(mask, hidden.dtype)
        for layer in self.layers[n_layers:]:
            hidden = layer(hidden, attention_mask=extended)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        pooled = self.dropout(mean_pool(hidden, mask))
        return tuple(self.heads[h](pooled) for h in HEADS)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.top(self.bottom(input_ids, attention_mask, 0), attention_mask, 0)


def load_encoder(path: Path) -> PreTrainedModel:
    """Any local Hugging Face BERT-family checkpoint directory; never a hub download."""
    model = AutoModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
    return model
