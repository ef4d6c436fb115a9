"""durable subscriptions: committed offsets per partition, and topics' audit_publish flag

Durable topic subscriptions (ADR 0015) keep their committed offsets in Opstage's database, so
they do not depend on the engine; a topic may ask for every publish to be audited.

Revision ID: 0007_durable_subscriptions
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007_durable_subscriptions'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('topics', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('audit_publish', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        'topic_subscriptions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('topic_id', sa.String(length=32), nullable=False),
        sa.Column('topic', sa.String(length=242), nullable=False),
        sa.Column('tenant', sa.String(length=80), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('max_deliveries', sa.Integer(), nullable=True),
        sa.Column('dlq_topic', sa.String(length=242), nullable=True),
        sa.Column('created_by', sa.String(length=32), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['topic_id'],
            ['topics.id'],
            name=op.f('fk_topic_subscriptions_topic_id_topics'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_topic_subscriptions')),
        sa.UniqueConstraint('topic', 'name', name=op.f('uq_topic_subscriptions_topic_name')),
    )
    op.create_index(
        op.f('ix_topic_subscriptions_tenant'), 'topic_subscriptions', ['tenant'], unique=False
    )
    op.create_table(
        'topic_subscription_offsets',
        sa.Column('subscription_id', sa.String(length=32), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('committed', sa.BigInteger(), nullable=False),
        sa.Column('deliveries', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['subscription_id'],
            ['topic_subscriptions.id'],
            name=op.f('fk_topic_subscription_offsets_subscription_id_topic_subscriptions'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint(
            'subscription_id', 'partition', name=op.f('pk_topic_subscription_offsets')
        ),
    )


def downgrade() -> None:
    op.drop_table('topic_subscription_offsets')
    op.drop_index(op.f('ix_topic_subscriptions_tenant'), table_name='topic_subscriptions')
    op.drop_table('topic_subscriptions')
    with op.batch_alter_table('topics', schema=None) as batch_op:
        batch_op.drop_column('audit_publish')
