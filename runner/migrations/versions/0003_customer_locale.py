"""The customer's locale (Babel's spelling, fr_CA), for emails in their language and formats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Nullable: customers whose locale is unknown, every one in a store made before, read the shop's
(LIFECYCLE_SHOP_LOCALE). Adding a nullable column is an ALTER TABLE on SQLite and PostgreSQL alike.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customer", sa.Column("locale", sa.String(), nullable=True))
