"""Money amounts in Chinese complaints, parsed to yuan.

Handles Arabic and Chinese numerals and the shorthand people type:
1.2万, 3千5 (3,500), 一万五 (15,000), ￥8,000.00, 两万元, 五百块, 五万多, 2w, 5k.
A number counts as money only with a currency mark (￥, RMB, 人民币), a unit of
money (元, 块, 圆) or a multiplier (万, 千, w, k); 尾号1234 or 12378 are not money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "壹": 1,
    "贰": 2,
    "叁": 3,
    "肆": 4,
    "伍": 5,
    "陆": 6,
    "柒": 7,
    "捌": 8,
    "玖": 9,
}
_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_LATIN_MULT = {"w": 10_000, "W": 10_000, "k": 1000, "K": 1000}
_CN = "零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖十拾百佰千仟万亿"
_CN_DIGIT = "零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖"

AMOUNT = re.compile(
    r"(?P<prefix>[￥¥]|RMB|rmb|人民币)?\s*"
    r"(?P<num>"
    r"\d[\d,]*(?:\.\d+)?(?:[万千亿wWkK](?:\d(?![\d.]))?)*"  # 1.2万, 3千5, 8,000.00, 2w
    r"|[" + _CN_DIGIT + r"十拾][" + _CN + r"]*"  # 两万, 一万五, 十五万
    r")"
    r"(?P<approx>多|余|来)?"
    r"(?P<unit>元|块钱|块|圆|美元|美金)?"
)


@dataclass(frozen=True)
class Amount:
    text: str
    start: int
    end: int
    value: float


def chinese_to_number(text: str) -> float:
    """Value of a Chinese numeral, with the colloquial trailing digit (一万五 = 15000)."""
    total = 0.0
    section = 0.0
    digit: float | None = None
    last_unit = 1
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            section += (digit if digit is not None else 1) * _UNITS[ch]
            last_unit = _UNITS[ch]
            digit = None
        elif ch in _BIG:
            section += digit or 0
            total = (total + section) * _BIG[ch] if total and total < _BIG[ch] else total + section * _BIG[ch]
            section = 0
            last_unit = _BIG[ch]
            digit = None
        else:
            raise ValueError(f"not a Chinese numeral: {text!r}")
    if digit is not None:
        # A trailing digit after a unit is one unit lower: 一万五 -> 15000, 三百五 -> 350.
        section += digit * (last_unit // 10 if last_unit >= 10 and text[-2] not in "零〇" else 1)
    return total + section


def _arabic_to_number(text: str) -> float:
    """1.2万 -> 12000, 3千5 -> 3500, 2w -> 20000, 8,000.00 -> 8000."""
    match = re.match(r"([\d,]*\d(?:\.\d+)?)(.*)$", text)
    if not match:
        raise ValueError(text)
    value = float(match.group(1).replace(",", ""))
    rest = match.group(2)
    mult = 1
    for ch in rest:
        if ch in _BIG or ch in _UNITS or ch in _LATIN_MULT:
            mult = _BIG.get(ch) or _UNITS.get(ch) or _LATIN_MULT[ch]
            value *= mult
        elif ch.isdigit():
            value += int(ch) * (mult // 10)
    return value


def find_amounts(text: str) -> list[Amount]:
    """Every money amount in the text, in order."""
    found = []
    for m in AMOUNT.finditer(text):
        num = m.group("num")
        if not num:
            continue
        has_mult = bool(re.search(r"[万千亿wWkK]", num))
        if not (m.group("prefix") or m.group("unit") or has_mult):
            continue
        if m.group("unit") in ("美元", "美金"):
            continue  # foreign currency: not converted, not reported as yuan
        try:
            value = _arabic_to_number(num) if num[0].isdigit() else chinese_to_number(num)
        except (ValueError, IndexError):
            continue
        if value <= 0:
            continue
        start = m.start("prefix") if m.group("prefix") else m.start("num")
        found.append(Amount(text[start : m.end()], start, m.end(), value))
    return found
