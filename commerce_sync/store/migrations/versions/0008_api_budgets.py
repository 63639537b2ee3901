"""api_budgets: each outside system's call budget, shared by every worker process

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_budgets",
        sa.Column("system", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("ready_at", sa.Float(), nullable=False),
        sa.Column("claim_priority", sa.Integer(), nullable=False),
        sa.Column("claim_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("system"),
    )


def downgrade() -> None:
    op.drop_table("api_budgets")
