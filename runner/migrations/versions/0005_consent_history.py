"""Consent history: the `consent_change` table, one row per change of a customer's marketing consent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Additive only: a new table and its index; existing customers start without history (their
consent's origin was not recorded). Forward-only, like every revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("accepted_before", sa.Boolean(), nullable=False),
        sa.Column("accepted_after", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_change_customer", "consent_change", ["customer_id", "at"])
