"""Abandoned checkouts and their carts (tables checkout, checkout_line), and orders found by name.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

Two new tables, empty until `lifecycle import checkouts` fills them, with the indexes the
abandoned-checkout trigger searches: checkouts by the instant they were abandoned, and a
customer's checkouts by creation. `ix_orders_name` lets `lifecycle import deliveries` find orders
by the name the shop knows them by (`#1001`) without scanning them. Creating tables and indexes is
the same on SQLite and PostgreSQL and changes no existing row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("abandoned_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("recovery_url", sa.String(), nullable=True),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.UniqueConstraint("external_id"),
    )
    op.create_index("ix_checkout_abandoned", "checkout", ["abandoned_at"])
    op.create_index("ix_checkout_customer", "checkout", ["customer_id", "created_at"])
    op.create_table(
        "checkout_line",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("checkout_id", sa.Integer(), sa.ForeignKey("checkout.id"), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
    )
    op.create_index("ix_checkout_line_checkout", "checkout_line", ["checkout_id"])
    op.create_index("ix_orders_name", "orders", ["name"])
