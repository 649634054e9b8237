"""The segment_threshold table: the VIP spend threshold each nightly refresh found, for `milestone`'s `segment: vip`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Forward-only, like every revision: a store is restored from its backup, never downgraded.

Left empty here: the threshold depends on LIFECYCLE_SEGMENT_VIP_PERCENTILE and on the instant it is
taken at, which belong to the running shop, not to the upgrade. The daemon fills it at start when
it holds no row of the day (and nightly after); `lifecycle refresh-affinity` does from cron.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_threshold",
        sa.Column("segment", sa.String(), primary_key=True),
        sa.Column("percentile", sa.Float(), primary_key=True),
        sa.Column("computed_at", sa.DateTime(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
