"""Alembic environment for speedrun.

speedrun opens databases itself (speedrun.tracking.db.upgrade) and hands Alembic the
connection it already holds, inside its own BEGIN IMMEDIATE transaction. The
`alembic` command line works too, from the URL in the config.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from speedrun.tracking.db import VERSION_TABLE
from speedrun.tracking.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only alter tables by copying them
        version_table=VERSION_TABLE,  # not alembic_version: that one is Optuna's (sweeps)
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        run_migrations(conn)
