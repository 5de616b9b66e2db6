"""secrets: edits that travel: when a run's texts and tags were last edited, and last merged

`note` and `tag` stamp `edited_at`; `merge` carries a run's texts and tags to a
database whose copy is older, and keeps in `merged_edit_at` the edit both
databases then share, so that an edit on both sides since is reported as a
conflict instead of overwritten. Existing runs have neither (never edited).

Revision ID: 0006_secrets_edit_times
Revises: 0005_secrets_clean_urls
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = "0006_secrets_edit_times"
down_revision = "0005_secrets_clean_urls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch rebuild of `runs`: see 0004).
    op.add_column("runs", sa.Column("edited_at", sa.DateTime(), nullable=True))
    op.add_column("runs", sa.Column("merged_edit_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "merged_edit_at")
    op.drop_column("runs", "edited_at")
