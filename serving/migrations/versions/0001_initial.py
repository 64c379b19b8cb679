"""The first schema: tickets, their numbering, feedback, audit trail, API keys, webhook outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.Column("customer_id", sa.String(128)),
        sa.Column("source", sa.String(16)),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64)),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("issue", sa.String(32), nullable=False),
        sa.Column("urgency", sa.String(4), nullable=False),
        sa.Column("sentiment", sa.String(16), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("needs_review", sa.Boolean, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("first_response_by", TS, nullable=False),
        sa.Column("resolve_by", TS, nullable=False),
        sa.Column("first_response_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("reopened", sa.Integer, nullable=False),
        sa.Column("text_masked", sa.Text, nullable=False),
        sa.Column("raw_text", sa.LargeBinary),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(96), nullable=False),
    )
    op.create_index("ix_tickets_received", "tickets", ["received_at"])
    op.create_index("ix_tickets_customer", "tickets", ["customer_id", "received_at"])
    op.create_index("ix_tickets_status_urgency", "tickets", ["status", "urgency"])
    op.create_index("ix_tickets_category", "tickets", ["category"])
    op.create_index("ix_tickets_department", "tickets", ["department"])
    op.create_table(
        "ticket_counters",
        sa.Column("day", sa.String(8), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32), sa.ForeignKey("tickets.ticket_id"), nullable=False),
        sa.Column("category", sa.String(32)),
        sa.Column("issue", sa.String(32)),
        sa.Column("urgency", sa.String(4)),
        sa.Column("sentiment", sa.String(16)),
        sa.Column("note", sa.Text),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_feedback_ticket_id", "feedback", ["ticket_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32)),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_audit_log_ticket_id", "audit_log", ["ticket_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("label", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("locked_until", TS),
        sa.Column("delivered_at", TS),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_webhook_outbox_next_attempt_at", "webhook_outbox", ["next_attempt_at"])


def downgrade() -> None:
    for table in ("webhook_outbox", "api_keys", "audit_log", "feedback", "ticket_counters", "tickets"):
        op.drop_table(table)
