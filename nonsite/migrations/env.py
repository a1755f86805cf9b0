"""Alembic environment: runs against the engine handed over by nonsite.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, text

from alerts.schema import metadata as alerts_metadata
from ingest.commands.store import metadata as commands_metadata
from ingest.store import metadata as ingest_metadata
from nonsite.auth.schema import metadata as auth_metadata
from nonsite.cluster.leases import metadata as cluster_metadata
from rules.store import metadata as rules_metadata

target_metadata = [
    ingest_metadata,
    commands_metadata,
    rules_metadata,
    alerts_metadata,
    cluster_metadata,
    auth_metadata,
]

MIGRATION_LOCK = 0x6E6F6E73_69746531  # "nonsite1": an advisory lock key of nonsite's own
engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Cluster nodes start together and each migrates: one at a time, the others then
            # find the schema current. Held until this transaction ends.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
