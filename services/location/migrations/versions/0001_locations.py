"""Vendor and user positions with GiST indexes on point(long, lat) for bounding-box queries.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("vendor_location", "user_location"):
        op.execute(
            f"""
            CREATE TABLE {table} (
                entity_id uuid PRIMARY KEY,
                lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
                long double precision NOT NULL CHECK (long BETWEEN -180 AND 180),
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        op.execute(f"CREATE INDEX ix_{table}_point ON {table} USING gist (point(long, lat))")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS user_location")
    op.execute("DROP TABLE IF EXISTS vendor_location")
