"""webhook_events.claim: the relay round that claimed an event, so a claim is an UPDATE
without RETURNING and its rows are read after it commits

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("claim", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("claim")
