"""Errors raised by the library; each carries a machine-readable code (SPEC section 8)."""

from __future__ import annotations


class TriageError(ValueError):
    """Bad input to the library. `code` is the API error code."""

    code = "validation_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class EmptyTextError(TriageError):
    code = "empty_text"


class TextTooLongError(TriageError):
    code = "text_too_long"


class UnknownLabelError(TriageError):
    code = "unknown_label"


class ConfigError(ValueError):
    """The data files (or a model bundle) are inconsistent; the service must not start."""


class DraftError(ValueError):
    """No acknowledgement variant passes the checks."""
