"""notebook round trip: sections as written, series, notebook order, unparsed configuration

A notebook imported by `speedrun import-md` comes back from `speedrun report`
line for line: each run keeps its section as written (`section_text`, and the
notebook's title and introduction before its first run, `preamble`), its place
in the notebook (`position`) and what its configuration says that no rule
understood (`unparsed_config`). `## Run 7` above `### Run 7a`, ... is a series:
a named group with the parent's texts, in its own table. All new columns are
empty for existing runs, which then render from their fields as before.

Revision ID: 0004_notebook
Revises: 0003_store
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa

revision = "0004_notebook"
down_revision = "0003_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("hypothesis", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("hardware", sa.Text(), nullable=True),
        sa.Column("analysis", sa.Text(), nullable=True),
        sa.Column("section_text", sa.Text(), nullable=True),
        sa.Column("closing_text", sa.Text(), nullable=True),
        sa.Column("preamble", sa.Text(), nullable=True),
        sa.Column("position", sa.Double(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("source_line", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_series_name", "series", ["name"], unique=False)
    op.create_index("ix_series_position", "series", ["position"], unique=False)
    # Plain ADD COLUMNs: a batch rebuild of `runs` would drop the table, and with it, by
    # ON DELETE CASCADE, every run's parameters, tags and epochs. `series_id` is therefore
    # no foreign key (SQLite can add one only by a rebuild); the store keeps it valid.
    op.add_column("runs", sa.Column("section_text", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("preamble", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("unparsed_config", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("position", sa.Double(), nullable=True))
    op.add_column("runs", sa.Column("series_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_position", "runs", ["position"], unique=False)
    op.create_index("ix_runs_series_id", "runs", ["series_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_series_id", table_name="runs")
    op.drop_index("ix_runs_position", table_name="runs")
    for column in ("series_id", "position", "unparsed_config", "preamble", "section_text"):
        op.drop_column("runs", column)
    op.drop_index("ix_series_position", table_name="series")
    op.drop_index("ix_series_name", table_name="series")
    op.drop_table("series")
