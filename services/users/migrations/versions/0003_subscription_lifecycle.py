"""The subscription's product, period and last applied RevenueCat event (the lifecycle is ordered by it).

`status` gains the value `BillingIssue`: the column is a non-native enum, a VARCHAR(16) without a CHECK constraint,
so the new value needs no DDL. Downgrading turns it back into `Active` (the store is retrying the charge: the user
keeps access until RevenueCat says EXPIRATION), a value the older code can read.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "user_subscription"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("product_id", sa.String(256)))
    op.add_column(TABLE, sa.Column("period_start", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("period_end", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("last_event_at", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("last_event_id", sa.String(256)))


def downgrade() -> None:
    op.execute(f"UPDATE {TABLE} SET status = 'Active' WHERE status = 'BillingIssue'")
    for column in ("last_event_id", "last_event_at", "period_end", "period_start", "product_id"):
        op.drop_column(TABLE, column)
