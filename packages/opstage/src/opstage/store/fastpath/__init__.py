"""The fast write path: the one place where rows reach the database without SQLAlchemy's
per-statement machinery (ADR 0008).

- ``values``: per column type, how a value is written and read, so what is stored equals Core.
- ``inserts``: ``InsertPlan``, a table's ``INSERT`` rendered from its ``Table`` metadata for
  every way rows are written (single and multi-row ``VALUES``, PostgreSQL ``unnest``, the
  SQLite JSON batch).
- ``query``: hot reads, a Core ``SELECT`` compiled once per dialect.
- ``execution``: plain SQL on the unit's connection where the driver runs (``in_driver``).
- ``sqlite_dialect``: SQLite transactions deferred to the unit's first statement.
- ``aiosqlite_thread``: the only code that touches aiosqlite's private members.
- ``sqlite_batch``: a SQLite bus batch as one statement (ADR 0004).
- ``pg_tail``: a PostgreSQL unit's tail as one statement (ADR 0005).

Only the store's unit of work, its bus session, its engine setup and the repositories named
in the root ``pyproject.toml``'s import-linter contract may import this package. Nothing is
re-exported here, so that importing one module does not import the others (``values`` needs
``store.engine``, which needs ``sqlite_dialect``).
"""
