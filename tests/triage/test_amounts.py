"""Money amounts parsed to yuan, as customers write them."""

from __future__ import annotations

import pytest

from triage.amounts import chinese_to_number, find_amounts


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("信用卡被盗刷1.2万元", [("1.2万元", 12000.0)]),
        ("跟朋友借了3千5", [("3千5", 3500.0)]),
        ("扣了我￥8,000.00的年费", [("￥8,000.00", 8000.0)]),
        ("被骗走两万元", [("两万元", 20000.0)]),
        ("多收了五百块", [("五百块", 500.0)]),
        ("存了五万多在里面", [("五万多", 50000.0)]),
        ("贷款一万五，利息算下来三千五百元", [("一万五", 15000.0), ("三千五百元", 3500.0)]),
        ("1万2的手机分期", [("1万2", 12000.0)]),
        ("被转走2w", [("2w", 20000.0)]),
        ("工资5k还被扣了", [("5k", 5000.0)]),
        ("房贷还剩十五万", [("十五万", 150000.0)]),
        ("理财本金100000元", [("100000元", 100000.0)]),
        ("RMB 5000 的汇款", [("RMB 5000", 5000.0)]),
        ("一千零五十元手续费", [("一千零五十元", 1050.0)]),
        ("一共4万多块钱", [("4万多块钱", 40000.0)]),
    ],
)
def test_parses_amounts(text: str, found: list[tuple[str, float]]) -> None:
    assert [(a.text, a.value) for a in find_amounts(text)] == found


@pytest.mark.parametrize(
    "text",
    ["尾号1234的卡", "我要打12378", "第三次投诉了", "千万别买", "2026年3月5日", "等了两个小时", "500美元的境外消费"],
)
def test_ignores_numbers_that_are_not_money(text: str) -> None:
    assert find_amounts(text) == []


def test_spans_point_at_the_amount() -> None:
    text = "上个月被扣了3千5，这个月又扣1.2万元"
    for a in find_amounts(text):
        assert text[a.start : a.end] == a.text


@pytest.mark.parametrize(
    ("numeral", "value"), [("一万两千", 12000), ("三百五", 350), ("一亿两千万", 120_000_000), ("十", 10)]
)
def test_chinese_numerals(numeral: str, value: int) -> None:
    assert chinese_to_number(numeral) == value
