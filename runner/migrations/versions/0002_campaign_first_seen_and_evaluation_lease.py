"""campaign_state: when a campaign was first seen, and a per-campaign evaluation lease.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Forward-only, like every revision: a store is restored from its backup, never downgraded.

A campaign already evaluated was first seen no later than its last evaluation, which is the
best that is known of it. last_evaluated_at becomes nullable: a campaign is now recorded when
first seen, before any evaluation completes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_state") as batch:
        batch.add_column(sa.Column("first_seen_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("evaluation_lease_token", sa.String(), nullable=True))
        batch.add_column(sa.Column("evaluation_lease_until", sa.DateTime(), nullable=True))
        batch.alter_column("last_evaluated_at", existing_type=sa.DateTime(), nullable=True)
    op.execute(sa.text("UPDATE campaign_state SET first_seen_at = last_evaluated_at"))
    with op.batch_alter_table("campaign_state") as batch:
        batch.alter_column("first_seen_at", existing_type=sa.DateTime(), nullable=False)
    # Release 0.1.0 checks this mark and would write campaign_state rows without first_seen_at;
    # moving it on makes that release refuse the store with its own message instead.
    op.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
