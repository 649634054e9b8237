"""coupon_code: the codes of imported coupon pools, and the send each was handed out to.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

A new table, so no existing row changes. A code is unique in the store and a send holds at most
one code; the partial index on free codes (send_id IS NULL) serves the hand-out, which takes the
next free codes of a pool in import order.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pool", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("send_id", sa.Integer(), sa.ForeignKey("send.id"), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("code", name="uq_coupon_code_code"),
        sa.UniqueConstraint("send_id", name="uq_coupon_code_send"),
    )
    op.create_index("ix_coupon_code_free", "coupon_code", ["pool", "id"],
                    sqlite_where=sa.text("send_id IS NULL"), postgresql_where=sa.text("send_id IS NULL"))
    op.create_index("ix_coupon_code_pool_assigned", "coupon_code", ["pool", "assigned_at"])
