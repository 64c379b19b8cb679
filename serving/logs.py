"""Logging for the service: every line passes through PII masking before it is written.

The filter sits on the handlers, so it covers uvicorn's access and error lines and
the service's own loggers; it masks the message and each string argument (uvicorn's
access formatter reads the arguments, e.g. a query string with a phone number).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from triage.pii import mask_text


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback can quote the text being processed: keep the type, drop the message.
            record.exc_text = f"{type(record.exc_info[1]).__name__} (details masked)"
            record.exc_info = None
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration with the masking filter on every handler, and the
    service's `triage.*` loggers written beside uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"mask": {"()": MaskingFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["mask"]
    config["loggers"]["triage"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
