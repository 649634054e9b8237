"""send.variant: the message variant (A/B test) each send renders, recorded when it is planned.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.

A nullable column: sends planned before it, and sends of campaigns without variants, have none.
Both SQLite and PostgreSQL add such a column in place, without copying the ledger.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send", sa.Column("variant", sa.String(), nullable=True))
