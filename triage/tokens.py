"""Chinese word segmentation with jieba, imported lazily (it loads a dictionary)."""

from __future__ import annotations

import logging
import re
from functools import cache, lru_cache
from types import ModuleType

_WORD = re.compile(r"[\u4e00-\u9fa5A-Za-z0-9]")


@cache
def _jieba() -> ModuleType:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1024)
def words(text: str) -> tuple[str, ...]:
    """jieba words that contain a letter, digit or Chinese character (no punctuation, no spaces).

    Memoised: the model's features and its evidence segment the same text in one triage call.
    """
    return tuple(w for w in _jieba().lcut(text) if _WORD.search(w))
