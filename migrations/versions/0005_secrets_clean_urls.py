"""secrets: credentials stripped from the URLs that stored command lines hold

speedrun used to record a training's command line as typed, so a run trained with
`--db postgresql+psycopg://alice:PW@host/db` kept alice's password, and `show`,
`export` and every merge passed it on. Each stored command line is rewritten with
its URLs as `speedrun.tracking.db.display_name` shows them (the one function that
masks credentials); nothing else changes. The passwords are gone: downgrading
cannot bring them back, and leaves the masked text.

Revision ID: 0005_secrets_clean_urls
Revises: 0004_notebook
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

from speedrun.tracking.db import mask_urls

revision = "0005_secrets_clean_urls"
down_revision = "0004_notebook"
branch_labels = None
depends_on = None

_runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("command", sa.Text))


def upgrade() -> None:
    conn = op.get_bind()
    # As bytes on SQLite: a command line that is not UTF-8 (a damaged file) is left as it is.
    column = sa.cast(_runs.c.command, sa.LargeBinary) if conn.dialect.name == "sqlite" else _runs.c.command
    found = conn.execute(sa.select(_runs.c.id, column).where(_runs.c.command.like("%://%"))).all()
    for run_id, command in found:
        if isinstance(command, bytes):
            try:
                command = command.decode("utf-8")
            except UnicodeDecodeError:
                continue
        cleaned = mask_urls(command)
        if cleaned != command:
            conn.execute(_runs.update().where(_runs.c.id == run_id).values(command=cleaned))


def downgrade() -> None:
    pass  # the credentials are gone for good
