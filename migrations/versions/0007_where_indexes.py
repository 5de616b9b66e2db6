"""indexes for `--where`: parameters looked up by name and value

A `--where` condition on a parameter is `runs.id IN (SELECT run_id FROM params
WHERE name = ? AND value < ?)` (speedrun.tracking.where). With (name, value,
run_id) indexed that subquery is a range scan of the index alone: at 10,000 runs
a three-condition query takes a third of the time it takes with the name index.

On PostgreSQL the index holds numbers and booleans only (`jsonb_typeof`, as the
queries test it): a btree entry cannot exceed a third of a page, and a long text
value (a notebook's unparsed option) would make inserting its run fail.

Revision ID: 0007_where_indexes
Revises: 0006_secrets_edit_times
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = "0007_where_indexes"
down_revision = "0006_secrets_edit_times"
branch_labels = None
depends_on = None

# As speedrun.tracking.models.PARAMS_LOOKUP_WHERE (a revision keeps its own copy: models change later).
PARAMS_LOOKUP_WHERE = "jsonb_typeof(value) IN ('number', 'boolean')"


def upgrade() -> None:
    op.create_index(
        "ix_params_lookup", "params", ["name", "value", "run_id"], unique=False,
        postgresql_where=sa.text(PARAMS_LOOKUP_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_params_lookup", table_name="params")
