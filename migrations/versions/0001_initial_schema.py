"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSON columns are JSONB on PostgreSQL (indexable, compact); on SQLite, JSON text.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('environments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('hardware_class', sa.String(length=32), nullable=False),
    sa.Column('hardware', sa.Text(), nullable=True),
    sa.Column('device_type', sa.String(length=16), nullable=True),
    sa.Column('gpu_name', sa.String(length=128), nullable=True),
    sa.Column('gpu_count', sa.Integer(), nullable=True),
    sa.Column('gpu_memory_gb', sa.Double(), nullable=True),
    sa.Column('cuda_version', sa.String(length=32), nullable=True),
    sa.Column('driver_version', sa.String(length=32), nullable=True),
    sa.Column('cpu_model', sa.String(length=256), nullable=True),
    sa.Column('cpu_cores', sa.Integer(), nullable=True),
    sa.Column('ram_gb', sa.Double(), nullable=True),
    sa.Column('os', sa.String(length=256), nullable=True),
    sa.Column('python_version', sa.String(length=32), nullable=True),
    sa.Column('torch_version', sa.String(length=64), nullable=True),
    sa.Column('torchvision_version', sa.String(length=64), nullable=True),
    sa.Column('hostname', sa.String(length=256), nullable=True),
    sa.Column('is_colab', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    with op.batch_alter_table('environments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_environments_hardware_class'), ['hardware_class'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=256), nullable=True),
    sa.Column('hypothesis', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('analysis', sa.Text(), nullable=True),
    sa.Column('group_name', sa.String(length=128), nullable=True),
    sa.Column('epochs_planned', sa.Integer(), nullable=True),
    sa.Column('epochs_completed', sa.Integer(), nullable=False),
    sa.Column('final_val_acc', sa.Double(), nullable=True),
    sa.Column('peak_val_acc', sa.Double(), nullable=True),
    sa.Column('peak_epoch', sa.Integer(), nullable=True),
    sa.Column('train_time_s', sa.Double(), nullable=True),
    sa.Column('mean_epoch_s', sa.Double(), nullable=True),
    sa.Column('wall_time_s', sa.Double(), nullable=True),
    sa.Column('data_load_s', sa.Double(), nullable=True),
    sa.Column('param_count', sa.Integer(), nullable=True),
    sa.Column('stated_final_val_acc', sa.Double(), nullable=True),
    sa.Column('stated_train_time_s', sa.Double(), nullable=True),
    sa.Column('extra', JSON, nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('git_commit', sa.String(length=64), nullable=True),
    sa.Column('git_dirty', sa.Boolean(), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('log_text', sa.Text(), nullable=True),
    sa.Column('environment_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_content_hash', ['content_hash'], unique=False)
        batch_op.create_index('ix_runs_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_environment_id'), ['environment_id'], unique=False)
        batch_op.create_index('ix_runs_final_val_acc', ['final_val_acc'], unique=False)
        batch_op.create_index('ix_runs_group', ['group_name'], unique=False)
        batch_op.create_index('ix_runs_label', ['label'], unique=False)
        batch_op.create_index('ix_runs_status', ['status'], unique=False)

    op.create_table('epoch_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('train_loss', sa.Double(), nullable=True),
    sa.Column('train_acc', sa.Double(), nullable=True),
    sa.Column('val_loss', sa.Double(), nullable=True),
    sa.Column('val_acc', sa.Double(), nullable=True),
    sa.Column('duration_s', sa.Double(), nullable=True),
    sa.Column('elapsed_s', sa.Double(), nullable=True),
    sa.Column('lr', sa.Double(), nullable=True),
    sa.Column('images_per_s', sa.Double(), nullable=True),
    sa.Column('extra', JSON, nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'epoch')
    )
    op.create_table('params',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('value', JSON, nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'name')
    )
    with op.batch_alter_table('params', schema=None) as batch_op:
        batch_op.create_index('ix_params_name_value', ['name', 'value'], unique=False)

    op.create_table('tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'tag')
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index('ix_tags_tag', ['tag'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index('ix_tags_tag')

    op.drop_table('tags')
    with op.batch_alter_table('params', schema=None) as batch_op:
        batch_op.drop_index('ix_params_name_value')

    op.drop_table('params')
    op.drop_table('epoch_metrics')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status')
        batch_op.drop_index('ix_runs_label')
        batch_op.drop_index('ix_runs_group')
        batch_op.drop_index('ix_runs_final_val_acc')
        batch_op.drop_index(batch_op.f('ix_runs_environment_id'))
        batch_op.drop_index('ix_runs_created_at')
        batch_op.drop_index('ix_runs_content_hash')

    op.drop_table('runs')
    with op.batch_alter_table('environments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_environments_hardware_class'))

    op.drop_table('environments')
