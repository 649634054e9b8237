"""send.step: the journey step each send is (campaigns with `steps:`), and the index its next step is found by.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

A nullable column: sends of campaigns of one email, and every send before journeys, have none.
The index on (campaign_id, step, updated_at) lets the evaluation of step N+1 read only the rows of
step N settled recently, never a campaign's whole ledger.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send", sa.Column("step", sa.Integer(), nullable=True))
    op.create_index("ix_send_journey_step", "send", ["campaign_id", "step", "updated_at"])
