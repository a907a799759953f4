from services.kit.db.alembic_env import run

run()
