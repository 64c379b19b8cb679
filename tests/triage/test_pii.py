"""PII masking: real-looking complaint fragments in, masked text out."""

from __future__ import annotations

import pytest

from triage.pii import id_card_valid, luhn_valid, mask, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        # mobile numbers, plain, spaced, with +86
        ("我的手机13812345678一直收到催收短信", "我的手机138****5678一直收到催收短信"),
        ("回电请打 139 1234 5678 谢谢", "回电请打 139****5678 谢谢"),
        ("联系方式+86 15012345678", "联系方式150****5678"),
        # landlines keep their area code
        ("家里电话010-62345678没人接", "家里电话010-****5678没人接"),
        ("0755 23456789", "0755-****6789"),
        # bank cards: Luhn-valid, 16 to 19 digits, spaced or not
        ("卡号6222021234567890128被盗刷", "卡号6222 **** **** 0128被盗刷"),
        ("卡号 6228 4800 1234 5671 被冻结", "卡号 6228 **** **** 5671 被冻结"),
        ("信用卡4367-4212-3456-7896在境外消费", "信用卡4367 **** **** 7896在境外消费"),
        # ID numbers: checksum-valid only
        ("身份证号11010519491231002X", "身份证号110105********002X"),
        ("身份证320106198506151231已挂失", "身份证320106********1231已挂失"),
        # e-mail keeps the first letter and the domain
        ("请回复到zhang.wei@example.com", "请回复到z***@example.com"),
        # codes, passwords, CVV
        ("骗子让我报了验证码482913", "骗子让我报了验证码******"),
        ("他问我支付密码是多少，我说了密码：135790", "他问我支付密码是多少，我说了密码：******"),
        ("还让我说卡背面的CVV 123", "还让我说卡背面的CVV ***"),
        # street addresses keep the district
        ("我住在杭州市西湖区文三路478号2幢301室", "我住在杭州市西湖区****"),
        ("寄到朝阳区幸福家园3号楼2单元1101", "寄到朝阳区****"),
        # names after the listed keywords
        ("姓名：李小明，电话13900001111", "姓名：李**，电话139****1111"),
        ("本人王芳于3月5日办理", "本人王*于3月5日办理"),
        ("户名张伟的账户被冻结", "户名张*的账户被冻结"),
        ("联系人是欧阳娜娜", "联系人是欧阳**"),
    ],
)
def test_masks_personal_data(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "卡号尾号1234的借记卡",  # already partial
        "我打了12378投诉",  # regulator hotline
        "借了5万，每月还3000元",  # amounts
        "订单号1234567890123456",  # 16 digits that fail Luhn
        "身份证号110105194912310021",  # wrong checksum
        "客户来电反映其账户被冻结",  # 客户 followed by a verb, not a name
        "客户向我行反映问题",
        "客户张女士称被盗刷",  # a surname with 女士 identifies nobody
        "2026年3月5日在解放路支行办理",  # a branch, not an address
    ],
)
def test_leaves_non_personal_text_alone(text: str) -> None:
    assert mask_text(text) == text


def test_mask_reports_kinds_and_offsets() -> None:
    raw = "手机13812345678，卡号6222021234567890128"
    masked, masks = mask(raw)
    assert [m.kind for m in masks] == ["phone", "bank_card"]
    assert raw[masks[0].start : masks[0].end] == "13812345678"
    assert "13812345678" not in masked and "6222021234567890128" not in masked


def test_masking_is_idempotent() -> None:
    once = mask_text("手机13812345678卡6222021234567890128验证码123456")
    assert mask_text(once) == once


def test_checksums() -> None:
    assert luhn_valid("6222021234567890128")
    assert not luhn_valid("6222021234567890127")
    assert id_card_valid("11010519491231002X")
    assert id_card_valid("11010519491231002x")
    assert not id_card_valid("110105194912310021")
