"""Favourites, the vendors they point at (a projection of vendor events), and notifications.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vendor",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online_noticed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "favourite",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("vendor_id", sa.Uuid(), sa.ForeignKey("vendor.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_favourite_vendor_id", "favourite", ["vendor_id"])
    op.create_table(
        "notification",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(256), nullable=False),
        sa.Column("vendor_id", sa.Uuid()),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("body", sa.String(1024), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_notification_user_dedupe"),
    )
    op.create_index("ix_notification_user_seq", "notification", ["user_id", sa.text("seq DESC")])
    op.create_index("ix_notification_unread", "notification", ["user_id"], postgresql_where=sa.text("read_at IS NULL"))


def downgrade() -> None:
    op.drop_table("notification")
    op.drop_table("favourite")
    op.drop_table("vendor")
