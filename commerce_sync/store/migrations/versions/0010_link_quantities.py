"""links.quantities: an order link's quantities per SKU, so the inventory push can tell
the ERP's stock change caused by orders it linked from any other change; an index to
find the links after a mark

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("links", sa.Column("quantities", sa.JSON(), nullable=True))
    op.create_index("ix_links_kind_id", "links", ["pair", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_links_kind_id", table_name="links")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("quantities")
