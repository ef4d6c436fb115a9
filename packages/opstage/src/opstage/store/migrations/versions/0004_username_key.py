"""usernames unique without regard to case

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Adds ``users.username_key`` — the NFKC_Casefold of the trimmed username — with a unique
constraint, so ``ADMIN`` or ``admin `` can no longer sit next to ``admin`` (issue 15), on SQLite
and PostgreSQL alike (their ``lower()`` functions disagree outside ASCII, so the folding is done
here, in Python, and by the server for every new name).

Existing rows that fold to the same key: the oldest keeps the plain key (and so its login); each
later one keeps its row, role and sessions, and gets the key ``<key>#<user id>``, which is also
the name it now logs in with, until an owner deletes it (docs/compatibility.md).
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _key(name: str) -> str:
    # A frozen copy of domain.identity.username_key: a migration must not change with the code.
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username_key', sa.String(length=320), nullable=True))
    conn = op.get_bind()
    users = sa.table(
        'users',
        sa.column('id', sa.String),
        sa.column('username', sa.String),
        sa.column('username_key', sa.String),
        sa.column('created_at', sa.DateTime),
    )
    taken: set[str] = set()
    rows = conn.execute(
        sa.select(users.c.id, users.c.username).order_by(users.c.created_at, users.c.id)
    ).all()
    for user_id, username in rows:
        key = _key(username)
        if key in taken:
            key = f"{key}#{_key(user_id)}"
        taken.add(key)
        conn.execute(users.update().where(users.c.id == user_id).values(username_key=key))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column(
            'username_key', existing_type=sa.String(length=320), nullable=False
        )
        batch_op.create_unique_constraint(batch_op.f('uq_users_username_key'), ['username_key'])


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_username_key'), type_='unique')
        batch_op.drop_column('username_key')
