import pytest

from nonsite.db import make_engine, migrate


@pytest.fixture
def engine(db_url):
    """A migrated service database, on SQLite and on PostgreSQL (see tests/conftest.py)."""
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()
