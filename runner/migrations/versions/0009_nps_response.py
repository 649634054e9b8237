"""Net Promoter Score answers: the `nps_response` table, one row per send answered.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Additive only: a new table and its indexes, empty until a customer follows a score link.
Forward-only, like every revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nps_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["send_id"], ["send.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("send_id"),
    )
    op.create_index("ix_nps_response_customer", "nps_response", ["customer_id", "changed_at"])
    op.create_index("ix_nps_response_answered", "nps_response", ["answered_at"])
