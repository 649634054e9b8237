"""Customer indexes for the anniversary trigger: (time_zone, first_order_at) and (time_zone, created_at).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

The trigger searches each zone's customers for first orders (or accounts) made on one local date
in each past year: a range of each index per year. Creating an index is the same statement on
SQLite and PostgreSQL and changes no row.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customer_first_order", "customer", ["time_zone", "first_order_at"])
    op.create_index("ix_customer_created", "customer", ["time_zone", "created_at"])
