"""feed_marks: where each change feed has read up to

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 06:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("entity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.Integer(), nullable=False),
        sa.Column("last_started", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair", "entity", name="uq_feed_marks_feed"),
    )


def downgrade() -> None:
    op.drop_table("feed_marks")
