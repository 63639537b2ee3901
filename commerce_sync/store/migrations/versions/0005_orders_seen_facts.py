"""orders_seen keeps the facts the anomaly checks learn from

Total and currency, billing and shipping country, a keyed hash of the shipping address
and the quantity per SKU. Rows recorded before stay (the orders-per-e-mail rule still
counts them) with the new columns empty; the anomaly checks skip them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRINGS = {"currency": 3, "billing_country": 2, "shipping_country": 2, "address_key": 80}


def upgrade() -> None:
    with op.batch_alter_table("orders_seen") as batch:
        for name, length in _STRINGS.items():
            batch.add_column(
                sa.Column(
                    name,
                    sqlmodel.sql.sqltypes.AutoString(length=length),
                    nullable=False,
                    server_default="",
                )
            )
        batch.add_column(sa.Column("total", sa.Numeric(18, 4), nullable=True))
        batch.add_column(sa.Column("sku_quantities", sa.JSON(), nullable=True))
    op.create_index(
        "ix_orders_seen_address_key",
        "orders_seen",
        ["pair", "address_key", "placed_at"],
        unique=False,
    )
    op.create_index("ix_orders_seen_placed_at", "orders_seen", ["pair", "placed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_orders_seen_placed_at", table_name="orders_seen")
    op.drop_index("ix_orders_seen_address_key", table_name="orders_seen")
    with op.batch_alter_table("orders_seen") as batch:
        for name in ("sku_quantities", "total", *_STRINGS):
            batch.drop_column(name)
