"""capsule service stored status

The reference server keeps a service's status (HEALTHY, UNHEALTHY, UNKNOWN from its health
reports; STALE once the sweep has found its agent OFFLINE) next to the health itself, and a
service whose agent comes back reads that stored STALE until its next report. Existing rows
take the status their health maps to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('capsule_services', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('status', sa.String(length=16), nullable=False, server_default='UNKNOWN')
        )
    op.execute(
        "UPDATE capsule_services SET status = CASE health_status"
        " WHEN 'UP' THEN 'HEALTHY' WHEN 'DEGRADED' THEN 'UNHEALTHY' WHEN 'DOWN' THEN 'UNHEALTHY'"
        " ELSE 'UNKNOWN' END"
    )


def downgrade() -> None:
    with op.batch_alter_table('capsule_services', schema=None) as batch_op:
        batch_op.drop_column('status')
