"""The reorder_forecast table: when each customer's next order is expected, per order, for `predicted_reorder`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

The table holds only what the orders already say, so it is filled here by the same function
imports keep it current with (one INSERT ... SELECT over the orders), rather than by a frozen
copy of its query that could drift from it.
"""

import sqlalchemy as sa
from alembic import op

from runner.importers.aggregates import refresh_reorder_forecasts

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reorder_forecast",
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("expected_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_reorder_forecast_expected", "reorder_forecast", ["expected_at"])
    op.create_index("ix_reorder_forecast_customer", "reorder_forecast", ["customer_id"])
    refresh_reorder_forecasts(op.get_bind())
