"""Text normalisation and the long-text policy.

Normalisation keeps what carries signal (emoji, Chinese punctuation, a capped
run of exclamation marks) and removes what only varies between keyboards
(full-width letters and digits, odd whitespace).
"""

from __future__ import annotations

import re

# Chinese punctuation that Chinese text uses in its full-width form; everything
# else in the full-width block (letters, digits, ASCII symbols) becomes half-width.
_KEEP_FULLWIDTH = set("，！？：；（）")
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _KEEP_FULLWIDTH}
_FULLWIDTH[0x3000] = 0x20  # ideographic space
_FULLWIDTH[0xFFE5] = ord("¥")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_REPEATS = re.compile(r"([!?！？。.，,~～])\1{3,}")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufeff]")
# Markers that open the part of a complaint saying what the customer wants.
_REQUEST = re.compile(r"诉求|要求|希望|请求|请(你们|贵行|尽快|立即|马上)|我要|现在要")
ELLIPSIS = "……"


def normalize(text: str) -> str:
    """Full-width to half-width, tidy whitespace, cap repeated punctuation at three."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.translate(_FULLWIDTH)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    text = _REPEATS.sub(lambda m: m.group(1) * 3, text)
    return text.strip()


def fit_to_budget(text: str, max_chars: int) -> str:
    """Keep the head and the tail of a long text within `max_chars`.

    Complaints open with what happened and close with what the customer wants,
    so the middle is dropped. When a request section (诉求, 要求...) appears in
    the second half and fits in two thirds of the budget, the tail starts there.
    """
    if max_chars <= len(ELLIPSIS) + 2:
        raise ValueError("max_chars is too small to keep a head and a tail")
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ELLIPSIS)
    tail_len = room * 3 // 5
    half = len(text) // 2
    for match in _REQUEST.finditer(text, half):
        if len(text) - match.start() <= room * 2 // 3:
            tail_len = max(tail_len, len(text) - match.start())
            break
    head_len = room - tail_len
    return text[:head_len] + ELLIPSIS + text[len(text) - tail_len :]
