"""Users, integrations and subscriptions.

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
        "user",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("clerk_id", sa.String(128), nullable=False, unique=True),
        sa.Column("lat", sa.Float()),
        sa.Column("long", sa.Float()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "integration",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "type", sa.Enum("Clerk", "RevenueCat", name="integrationtype", native_enum=False, length=16), nullable=False
        ),
        sa.Column("provider_id", sa.String(256)),
        sa.Column("data", sa.JSON()),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_integration_user_id", "integration", ["user_id"])
    op.create_table(
        "user_subscription",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column(
            "status",
            sa.Enum(
                "Active", "Cancelled", "Inactive", "Pending", name="subscriptionstatus", native_enum=False, length=16
            ),
            nullable=False,
            server_default="Inactive",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("user_subscription")
    op.drop_table("integration")
    op.drop_table("user")
