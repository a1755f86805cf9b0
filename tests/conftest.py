"""Shared fixtures: a real Mosquitto per test, SQLite and PostgreSQL databases.

Nothing here skips for a missing broker or database: a missing one fails the test, and with
NONSITE_FORBID_SKIPS=1 (set by .ci/run) any skipped test fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nonsite.db import make_engine, migrate
from tests.brokers import Mosquitto

DEFAULT_PG_URL = "postgresql+psycopg://{user}@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    url = os.environ.get("NONSITE_TEST_PG_URL")
    if url:
        return url
    import getpass

    return DEFAULT_PG_URL.format(user=getpass.getuser())


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop(kill=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    admin = make_engine(pg_admin_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is reported the same way
        pytest.fail(
            f"PostgreSQL is required and unreachable at {pg_admin_url()} ({exc}); set "
            "NONSITE_TEST_PG_URL or run ./dev test, which provides one"
        )
    base = pg_admin_url()
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a store test against both SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nonsite.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated service database, on SQLite and on PostgreSQL (``db_url``)."""
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("NONSITE_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"NONSITE_FORBID_SKIPS=1: {skipped} test(s) skipped; failing the run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
