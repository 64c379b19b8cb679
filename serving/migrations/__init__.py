"""Alembic migrations of the ticket store (applied by `triage serve` and `triage migrate`)."""
