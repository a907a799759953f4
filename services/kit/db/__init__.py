"""Async database access (SQLAlchemy + asyncpg through SQLModel) and Alembic migrations, shared by every service."""
