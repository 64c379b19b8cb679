"""Masking of personal data (SPEC section 6). It runs before anything else sees the text.

Each mask keeps what helps a person (the last digits of a card, the area code
of a phone) and nothing that identifies the customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = {
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "慕容",
    "皇甫",
    "令狐",
    "夏侯",
    "公孙",
    "宇文",
    "长孙",
    "尉迟",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "司徒",
    "申屠",
    "百里",
}
# A character that cannot be the second character of a name: it starts the
# next words instead (客户向我行反映, 客户王某来电).
_NOT_NAME = set("我你他她们行银反称表要的在于说已未没不也都就又还对向从到把被让给和与及等来去办申投咨询女男先生某经理")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID_CARD = re.compile(
    r"(?<![0-9])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9])"
)
_CARD = re.compile(r"(?<![0-9])\d{4}(?:[ -]?\d){12,15}(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0\d{2,3})[ -]?(\d{7,8})(?![0-9])")
_CODE = re.compile(
    r"(验证码|动态码|校验码|短信码|交易密码|查询密码|登录密码|支付密码|密码)(\s*(?:是|为|:|：)?\s*)(\d{4,8})(?![0-9])"
)
_CVV = re.compile(r"(CVV2?|cvv2?|CVN2?|安全码|背面三位数?)(\s*(?:是|为|:|：)?\s*)(\d{3})(?![0-9])")
_ADDRESS = re.compile(
    r"[\u4e00-\u9fa5A-Za-z0-9]{1,12}(?:路|街|大道|巷|弄|胡同)[0-9一二三四五六七八九十]+号"
    r"(?:[0-9一二三四五六七八九十]+(?:号楼|栋|幢|单元|楼|层|室|号))*"
    r"|[\u4e00-\u9fa5]{2,10}(?:小区|花园|公寓|家园|新村|苑)[0-9一二三四五六七八九十]+(?:号楼|栋|幢)"
    r"(?:[0-9一二三四五六七八九十]+(?:单元|楼|层|室|号))*(?:[0-9]{2,5}室?)?"
)
_NAME_KEY = re.compile(r"(姓名|客户|本人|户名|联系人)(\s*(?:是|为|叫|:|：)\s*|\s*)")


@dataclass(frozen=True)
class Mask:
    kind: str
    start: int
    end: int
    replacement: str


def id_card_valid(number: str) -> bool:
    """GB 11643 checksum of an 18-character resident ID number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _find_masks(text: str) -> list[Mask]:
    found: list[Mask] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int, replacement: str) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        found.append(Mask(kind, start, end, replacement))

    for m in _EMAIL.finditer(text):
        local, domain = m.group().split("@", 1)
        add("email", m.start(), m.end(), f"{local[0]}***@{domain}")
    for m in _ID_CARD.finditer(text):
        if id_card_valid(m.group()):
            add("id_card", m.start(), m.end(), m.group()[:6] + "*" * 8 + m.group()[-4:])
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if 16 <= len(digits) <= 19 and luhn_valid(digits):
            add("bank_card", m.start(), m.end(), f"{digits[:4]} **** **** {digits[-4:]}")
    for m in _MOBILE.finditer(text):
        add("phone", m.start(), m.end(), f"{m.group(1)}****{m.group(3)}")
    for m in _LANDLINE.finditer(text):
        add("landline", m.start(), m.end(), f"{m.group(1)}-****{m.group(2)[-4:]}")
    for m in _CODE.finditer(text):
        add("secret", m.start(3), m.end(3), "*" * len(m.group(3)))
    for m in _CVV.finditer(text):
        add("cvv", m.start(3), m.end(3), "***")
    for m in _ADDRESS.finditer(text):
        # Keep the province, city and district: they help routing and identify nobody.
        region = max(m.group().rfind(c) for c in "省市区县镇乡")
        add("address", m.start() + region + 1, m.end(), "****")
    for m in _NAME_KEY.finditer(text):
        start = m.end()
        name = _name_at(text, start)
        if name:
            keep = 2 if name[:2] in _COMPOUND_SURNAMES else 1
            add("name", start, start + len(name), name[:keep] + "*" * (len(name) - keep))
    return sorted(found, key=lambda x: x.start)


def _name_at(text: str, start: int) -> str:
    """A Chinese name (surname + one or two characters) starting at `start`, or ''."""
    surname = 2 if text[start : start + 2] in _COMPOUND_SURNAMES else 1
    if surname == 1 and (start >= len(text) or text[start] not in _SURNAMES):
        return ""
    end = start + surname
    while end < len(text) and end - start < surname + 2 and "\u4e00" <= text[end] <= "\u9fa5":
        if text[end] in _NOT_NAME:
            break
        end += 1
    name = text[start:end]
    if len(name) <= surname:
        return ""
    return name


def mask(text: str) -> tuple[str, list[Mask]]:
    """Return the masked text and the masks applied (offsets into the input)."""
    masks = _find_masks(text)
    out: list[str] = []
    pos = 0
    for m in masks:
        out.append(text[pos : m.start])
        out.append(m.replacement)
        pos = m.end
    out.append(text[pos:])
    return "".join(out), masks


def mask_text(text: str) -> str:
    return mask(text)[0]
