"""The transactional outbox beside the user tables: user events are written with the change they describe.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from services.kit.events.outbox import create_outbox_table_v1, drop_outbox_table_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table_v1(op)


def downgrade() -> None:
    drop_outbox_table_v1(op)
