"""Normalisation and the long-text policy."""

from __future__ import annotations

import pytest

from triage.text import ELLIPSIS, fit_to_budget, normalize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ＡＰＰ登录不了１２３", "APP登录不了123"),
        ("卡被冻结了！！！！！！！", "卡被冻结了！！！"),
        ("为什么？？？？？", "为什么？？？"),
        ("  第一行  \r\n\r\n  第二行\t\t结束  ", "第一行\n第二行 结束"),
        ("扣了￥８０００", "扣了¥8000"),
        ("气死了😡😡", "气死了😡😡"),
        ("全角　空格", "全角 空格"),
        ("中文标点，保留：（括号）", "中文标点，保留：（括号）"),
    ],
)
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


def test_short_text_is_kept_whole() -> None:
    assert fit_to_budget("信用卡被盗刷", 100) == "信用卡被盗刷"


def test_long_text_keeps_head_and_request() -> None:
    story = "2026年3月5日我在网点办理业务。" + "后来又去了好几次，每次都说系统问题。" * 40
    request = "诉求：1. 退还多收的手续费；2. 给出书面说明。"
    text = story + request
    fitted = fit_to_budget(text, 200)
    assert len(fitted) <= 200
    assert fitted.startswith("2026年3月5日")
    assert fitted.endswith(request)
    assert ELLIPSIS in fitted
