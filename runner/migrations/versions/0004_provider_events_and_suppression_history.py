"""Provider events and suppression history: the `event`, `suppression_history` and `webhook_nonce`
tables, `suppression.source`, and an index on `send.provider_message_id` for matching events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Additive only: new tables, a nullable column (existing suppressions keep NULL: their source was
not recorded) and an index. Forward-only, like every revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("provider_event_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("send_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["send_id"], ["send.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "provider_event_id", name="uq_event_provider_event"),
    )
    op.create_index("ix_event_customer_type_at", "event", ["customer_id", "type", "occurred_at"])
    op.create_index("ix_event_send_type", "event", ["send_id", "type"])
    op.create_table(
        "suppression_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_suppression_history_email", "suppression_history", ["email", "at"])
    op.create_table(
        "webhook_nonce",
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "nonce"),
    )
    op.create_index("ix_webhook_nonce_seen", "webhook_nonce", ["seen_at"])
    op.add_column("suppression", sa.Column("source", sa.String(), nullable=True))  # SQLite adds nullable columns
    op.create_index("ix_send_provider_message", "send", ["provider_message_id"])
