"""Complaint triage for Chinese banks: the library (no web framework, no torch)."""

__version__ = "0.1.0"

HEADS: tuple[str, ...] = ("category", "issue", "urgency", "sentiment")
