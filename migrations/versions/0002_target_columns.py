"""time to target as columns

`speedrun train --target ACC` records when val accuracy first reached ACC.
Version 0001 kept that inside the `extra` JSON; as columns it can be indexed,
sorted and compared like the other summary numbers. Existing values move over.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_acc", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("target_time_s", sa.Double(), nullable=True))
        batch_op.create_index("ix_runs_target_time_s", ["target_time_s"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE runs SET target_acc = (extra->>'target_acc')::float8, "
            "target_time_s = (extra->>'target_time_s')::float8, "
            "extra = extra - 'target_acc' - 'target_time_s' "
            "WHERE extra->'target_acc' IS NOT NULL AND jsonb_typeof(extra->'target_acc') <> 'null'"
        )
        return
    op.execute(
        "UPDATE runs SET target_acc = json_extract(extra, '$.target_acc'), "
        "target_time_s = json_extract(extra, '$.target_time_s'), "
        "extra = json_remove(extra, '$.target_acc', '$.target_time_s') "
        "WHERE json_extract(extra, '$.target_acc') IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE runs SET extra = extra || jsonb_build_object('target_acc', target_acc, "
            "'target_time_s', target_time_s) WHERE target_acc IS NOT NULL"
        )
    else:
        op.execute(
            "UPDATE runs SET extra = json_set(extra, '$.target_acc', target_acc, '$.target_time_s', target_time_s) "
            "WHERE target_acc IS NOT NULL"
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_target_time_s")
        batch_op.drop_column("target_time_s")
        batch_op.drop_column("target_acc")
