"""process identity of live runs; a params index every backend accepts

`process_start` records who the process of a live run is (boot and start
tick, see speedrun.tracking.liveness), so a reused pid is never mistaken for
the training that used to have it.

The (name, value) index of 0001 put a btree on a JSON column, which PostgreSQL
refuses (and no query could use: values are matched by text); runs are looked
up by parameter name, so that is what is indexed now.

Revision ID: 0003_store
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0003_store"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("process_start", sa.String(length=64), nullable=True))
    with op.batch_alter_table("params", schema=None) as batch_op:
        batch_op.drop_index("ix_params_name_value", if_exists=True)
        batch_op.create_index("ix_params_name", ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("params", schema=None) as batch_op:
        batch_op.drop_index("ix_params_name")
        if op.get_bind().dialect.name == "sqlite":
            batch_op.create_index("ix_params_name_value", ["name", "value"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("process_start")
