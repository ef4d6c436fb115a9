"""topic bus: topics, the embedded engine's partitions and log, agents' tenants

The topic bus (issue 18) keeps a state row per registered topic; the embedded engine keeps its
partitions' offset allocators and its log in the same database. Agents (and the registration
tokens they come from) may name the tenants they publish and subscribe in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'topics',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('namespace', sa.String(length=80), nullable=False),
        sa.Column('tenant', sa.String(length=80), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('wire_name', sa.String(length=242), nullable=False),
        sa.Column('partitions', sa.Integer(), nullable=False),
        sa.Column('replication', sa.Integer(), nullable=False),
        sa.Column('retention_ms', sa.BigInteger(), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(length=32), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_topics')),
        sa.UniqueConstraint('wire_name', name=op.f('uq_topics_wire_name')),
    )
    op.create_index(op.f('ix_topics_tenant'), 'topics', ['tenant'], unique=False)
    op.create_table(
        'topic_partitions',
        sa.Column('topic', sa.String(length=242), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('next_offset', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('topic', 'partition', name=op.f('pk_topic_partitions')),
    )
    op.create_table(
        'topic_log',
        sa.Column('topic', sa.String(length=242), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.Text(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=300), nullable=True),
        sa.Column('produced_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('topic', 'partition', 'offset', name=op.f('pk_topic_log')),
        sa.UniqueConstraint(
            'topic', 'idempotency_key', name=op.f('uq_topic_log_topic_idempotency_key')
        ),
    )
    with op.batch_alter_table('registration_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic_tenants', sa.JSON(), nullable=True))
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic_tenants', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('topic_tenants')
    with op.batch_alter_table('registration_tokens', schema=None) as batch_op:
        batch_op.drop_column('topic_tenants')
    op.drop_table('topic_log')
    op.drop_table('topic_partitions')
    op.drop_index(op.f('ix_topics_tenant'), table_name='topics')
    op.drop_table('topics')
