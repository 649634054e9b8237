"""Index recent mail per customer, for the sending policies' frequency cap and smart sending.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Forward-only, like every revision: a store is restored from its backup, never downgraded.
The policies read a chunk's customers' mail sent since an instant from this index alone, and
their mail still to go out through it, so a long history is never scanned.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_send_customer_mail", "send", ["customer_id", "status", "sent_at", "campaign_id"])
