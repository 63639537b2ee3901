"""webhook_events by workflow id: the customer feed asks whether a webhook announced a change

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_events_workflow_id", "webhook_events", ["workflow_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_workflow_id", table_name="webhook_events")
