"""Dates and times a customer names (明天, 周五前, 11月30日, 3天内), resolved to calendar dates.

Resolved against the complaint's received date in the deployment's time zone.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from triage.amounts import chinese_to_number

_WEEKDAYS = {
    "一": 0,
    "二": 1,
    "三": 2,
    "四": 3,
    "五": 4,
    "六": 5,
    "日": 6,
    "天": 6,
    "1": 0,
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
}
_NUM = r"[0-9一二两三四五六七八九十]+"
DEADLINE = re.compile(
    r"(?P<relday>今天|今晚|今日|明天|明早|明晚|明日|后天)"
    r"|(?P<next>下)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
    r"|(?:(?P<year>20\d{2})年)?(?P<month>" + _NUM + r")月(?P<day>" + _NUM + r")[日号]"
    r"|(?P<ndays>" + _NUM + r")(?:个)?(?:工作日|天|日)(?:之内|以内|内)"
    r"|(?P<monthend>月底|这个月底|本月底)"
)
_RELDAY = {"今天": 0, "今晚": 0, "今日": 0, "明天": 1, "明早": 1, "明晚": 1, "明日": 1, "后天": 2}


@dataclass(frozen=True)
class Deadline:
    text: str
    start: int
    end: int
    on: date


def _number(text: str) -> int:
    return int(text) if text.isdigit() else int(chinese_to_number(text))


def _resolve(m: re.Match[str], today: date) -> date | None:
    if m.group("relday"):
        return today + timedelta(days=_RELDAY[m.group("relday")])
    if m.group("wd"):
        target = _WEEKDAYS[m.group("wd")]
        if m.group("next"):  # 下周三: Wednesday of next calendar week
            return today + timedelta(days=7 - today.weekday() + target)
        return today + timedelta(days=(target - today.weekday()) % 7)
    if m.group("month"):
        month, day = _number(m.group("month")), _number(m.group("day"))
        year = int(m.group("year")) if m.group("year") else today.year
        try:
            on = date(year, month, day)
        except ValueError:
            return None
        if not m.group("year") and on < today - timedelta(days=180):
            on = date(year + 1, month, day)  # 1月3日 written in late December
        return on
    if m.group("ndays"):
        return today + timedelta(days=_number(m.group("ndays")))
    if m.group("monthend"):
        return date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    return None


def find_deadlines(text: str, today: date) -> list[Deadline]:
    """Dates named in the text that are today or later; past dates are history, not deadlines."""
    found = []
    for m in DEADLINE.finditer(text):
        on = _resolve(m, today)
        if on is not None and on >= today:
            found.append(Deadline(m.group(), m.start(), m.end(), on))
    return found


def mentioned_dates(text: str) -> list[str]:
    """Every date expression in the text, past ones included, as written."""
    return [m.group() for m in DEADLINE.finditer(text)]
