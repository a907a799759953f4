"""The vendor table (owner stored in owner_id; the original wrote it to the wrong column).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vendor",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(1000)),
        sa.Column("phone", sa.String(32)),
        sa.Column("email", sa.String(254)),
        sa.Column("website", sa.String(2048)),
        sa.Column("primary_image", sa.String(2048)),
        sa.Column("open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("lat", sa.Float()),
        sa.Column("long", sa.Float()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_vendor_owner_id", "vendor", ["owner_id"])
    op.create_index("ix_vendor_created_at_id", "vendor", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("vendor")
