"""Alembic environment: runs against the engine handed over by nonsite.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

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

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()
