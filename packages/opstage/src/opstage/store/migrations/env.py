"""Alembic environment: always handed a live connection by ``opstage.store.migrate``."""

from __future__ import annotations

from alembic import context

from opstage.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the alembic CLI is not how this project migrates
    raise RuntimeError("run migrations with `opstage migrate` (opstage.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
