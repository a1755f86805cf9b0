"""The service refuses an archive that is not the one its database was fed from."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert

from ingest.archive import RawArchive
from ingest.store import checkpoints
from nonsite.db import make_engine, migrate
from tests.service_process import serve_once, write_config

pytestmark = pytest.mark.integration


def test_a_checkpoint_beyond_the_archive_stops_the_start_with_the_reason(mosquitto, tmp_path):
    data = tmp_path / "d"
    config = write_config(tmp_path / "n.toml", broker_url=mosquitto.url, data_dir=data, mns=["MN1"])
    data.mkdir()
    RawArchive(data / "archive.sqlite3").close()  # a fresh archive ...
    engine = make_engine(f"sqlite:///{data / 'nonsite.db'}")
    migrate(engine)
    with engine.begin() as conn:  # ... beside a database that had decoded 500 messages
        conn.execute(delete(checkpoints))
        conn.execute(
            insert(checkpoints).values(consumer="ingest", seq=500, updated_at=datetime.now(UTC))
        )
    engine.dispose()
    run = serve_once(config)
    assert run.returncode == 1
    assert "up to message 500" in run.stderr and "only ever numbered 0" in run.stderr
