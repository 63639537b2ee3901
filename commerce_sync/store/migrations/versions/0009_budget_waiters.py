"""api_budget_waiters, api_budget_runs: the call budgets' waiting callers, shared by every
worker process, so the budget's slots are granted in one order across the deployment

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_budget_waiters",
        sa.Column("system", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("system", "holder"),
    )
    op.create_table(
        "api_budget_runs",
        sa.Column("run", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run"),
    )
    op.create_index("ix_api_budget_runs_since", "api_budget_runs", ["since"])
    # The one claim per system these columns held is replaced by a row per waiting process.
    with op.batch_alter_table("api_budgets") as batch:
        batch.drop_column("claim_priority")
        batch.drop_column("claim_until")


def downgrade() -> None:
    with op.batch_alter_table("api_budgets") as batch:
        batch.add_column(sa.Column("claim_until", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("claim_priority", sa.Integer(), nullable=False, server_default="0")
        )
    op.drop_index("ix_api_budget_runs_since", table_name="api_budget_runs")
    op.drop_table("api_budget_runs")
    op.drop_table("api_budget_waiters")
