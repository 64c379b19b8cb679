"""Texts to encoder inputs: a `tokenizers` tokenizer.json, plus a prefix and a character map where the base model has them.

A directory written by `training.convert` (multilingual-e5) holds
`tokenizer.json` (a plain unigram tokenizer), `normalization.json` (its
per-codepoint normalization map) and `tokenizer_config.json` (the `"query: "`
prefix). The map is applied with `str.translate` rather than as a `tokenizers`
normalizer: thousands of single-character rules there cost milliseconds a text.
An ordinary Hugging Face checkpoint directory (a WordPiece BERT, say) has only
a tokenizer.json and perhaps a tokenizer_config.json, and works as it is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from triage.errors import ConfigError

_PAD_TOKENS = ("<pad>", "[PAD]")


class EncoderTokenizer:
    """`encode_batch` gives int64 `input_ids` and `attention_mask`, right-padded to the batch's longest text."""

    def __init__(
        self, tokenizer: Tokenizer, pad_token: str, prefix: str = "", normalization: Mapping[str, str] | None = None
    ) -> None:
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ConfigError(f"the padding token {pad_token!r} is not in the tokenizer's vocabulary")
        self.prefix = prefix
        self.pad_id = pad_id
        self._table = str.maketrans(dict(normalization)) if normalization else None
        self._pad_token = pad_token
        # One configured tokenizer per max_length (the first is `tokenizer`
        # itself, which this object now owns): changing the truncation of a
        # tokenizer while another thread encodes with it is not safe.
        self._base = tokenizer
        self._by_length: dict[int, Tokenizer] = {}
        self._lock = threading.Lock()
        self._n_special = tokenizer.num_special_tokens_to_add(False)

    @classmethod
    def from_dir(cls, directory: Path) -> EncoderTokenizer:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(f"no tokenizer.json in {directory}")
        tokenizer = Tokenizer.from_file(str(path))
        config = _read_json(directory / "tokenizer_config.json") or {}
        normalization = _read_json(directory / "normalization.json")
        table = {str(k): str(v) for k, v in normalization.items()} if normalization else None
        return cls(tokenizer, _pad_token(tokenizer, config), str(config.get("prefix", "")), table)

    def encode_batch(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, [len(texts), longest]; texts over `max_length` tokens lose their end."""
        if max_length <= self._n_special:
            raise ValueError(f"max_length must leave room for text after {self._n_special} special tokens")
        if not texts:
            empty = np.zeros((0, 0), dtype=np.int64)
            return empty, empty.copy()
        if self._table is not None:
            prepared = [(self.prefix + text).translate(self._table) for text in texts]
        else:
            prepared = [self.prefix + text for text in texts]
        encodings = self._tokenizer(max_length).encode_batch(prepared)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def _tokenizer(self, max_length: int) -> Tokenizer:
        tokenizer = self._by_length.get(max_length)
        if tokenizer is not None:
            return tokenizer
        with self._lock:
            if max_length not in self._by_length:
                tokenizer = Tokenizer.from_str(self._base.to_str()) if self._by_length else self._base
                tokenizer.enable_truncation(max_length)  # the post-processor's <s> and </s> are kept
                tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self._pad_token)
                self._by_length[max_length] = tokenizer
            return self._by_length[max_length]


def _pad_token(tokenizer: Tokenizer, config: Mapping[str, object]) -> str:
    token = config.get("pad_token")
    if isinstance(token, dict):  # older Hugging Face configs store an AddedToken
        token = token.get("content")
    if isinstance(token, str):
        return token
    if tokenizer.padding is not None:
        return str(tokenizer.padding["pad_token"])
    for candidate in _PAD_TOKENS:
        if tokenizer.token_to_id(candidate) is not None:
            return candidate
    raise ConfigError("cannot tell the padding token: name it as pad_token in tokenizer_config.json")


def _read_json(path: Path) -> dict[str, object] | None:
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ConfigError(f"{path} should hold a JSON object")
    return value
