"""The migrations create exactly the tables the code declares, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alerts.schema import metadata as alerts_metadata
from ingest.commands.store import metadata as commands_metadata
from ingest.store import metadata as ingest_metadata
from nonsite.auth.schema import metadata as auth_metadata
from nonsite.cluster.leases import metadata as cluster_metadata
from nonsite.db import make_engine, migrate
from rules.store import metadata as rules_metadata


def test_migrations_match_the_declared_tables(db_url):
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(
                context,
                [
                    ingest_metadata,
                    commands_metadata,
                    rules_metadata,
                    alerts_metadata,
                    cluster_metadata,
                    auth_metadata,
                ],
            )
        tables = {d[1].name for d in diff if d[0] == "remove_table"}
        assert tables <= {"alembic_version"}
        assert [d for d in diff if d[0] != "remove_table"] == []
    finally:
        engine.dispose()


def test_nodes_migrating_one_database_at_once_wait_for_each_other(pg_url, tmp_path):
    """Cluster nodes start together and each runs the migrations: one runs them, the others
    wait for it and find nothing left to do (without the lock, the others failed on a table
    the first had just created). Processes, as nodes are: Alembic's context is per process."""
    import subprocess
    import sys

    config = tmp_path / "n.toml"
    config.write_text(f'[database]\nurl = "{pg_url}"\n[service]\ndata_dir = "{tmp_path}"\n')
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nonsite", "db", "upgrade", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [(run.wait(120), run.communicate()[0].decode()) for run in runs]
    assert [code for code, _ in outputs] == [0, 0, 0, 0], outputs
