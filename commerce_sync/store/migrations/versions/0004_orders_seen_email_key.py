"""orders_seen keeps a hash of the e-mail, not the e-mail (the risk rule only matches)

The rows only count for the rule's last hour, so the old ones are dropped rather than
converted (their e-mails cannot be keyed here: the key is a setting).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM orders_seen")
    op.drop_index("ix_orders_seen_email", table_name="orders_seen")
    with op.batch_alter_table("orders_seen") as batch:
        batch.drop_column("email")
        batch.add_column(
            sa.Column(
                "email_key",
                sqlmodel.sql.sqltypes.AutoString(length=80),
                nullable=False,
                server_default="",
            )
        )
    op.create_index(
        "ix_orders_seen_email_key", "orders_seen", ["pair", "email_key", "placed_at"], unique=False
    )


def downgrade() -> None:
    op.execute("DELETE FROM orders_seen")
    op.drop_index("ix_orders_seen_email_key", table_name="orders_seen")
    with op.batch_alter_table("orders_seen") as batch:
        batch.drop_column("email_key")
        batch.add_column(
            sa.Column(
                "email",
                sqlmodel.sql.sqltypes.AutoString(length=320),
                nullable=False,
                server_default="",
            )
        )
    op.create_index(
        "ix_orders_seen_email", "orders_seen", ["pair", "email", "placed_at"], unique=False
    )
