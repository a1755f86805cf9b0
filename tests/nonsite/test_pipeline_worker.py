"""The pipeline worker takes up markings declared online at its clock tick."""

from datetime import UTC, datetime
from multiprocessing import Pipe

from ingest.archive import RawArchive
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.pipeline_worker import Worker
from rules.store import declare_marking


def test_declared_markings_reach_the_rule_engine(tmp_path):
    config = parse_config(
        {
            "service": {"data_dir": str(tmp_path)},
            "enterprises": [
                {
                    "id": "E1",
                    "name": "甲",
                    "outlets": [{"id": "DA001", "kind": "gas", "mn": "MN1"}],
                }
            ],
        },
        "test.toml",
        env={},
    )
    RawArchive(tmp_path / "archive.sqlite3").close()
    db = make_engine(config.database_url())
    migrate(db)
    inbox, _parent_out = Pipe(duplex=False)
    _parent_in, outbox = Pipe(duplex=False)
    worker = Worker(config, inbox, outbox)
    try:
        assert worker.refresh_markings() is False  # nothing declared yet
        with db.begin() as conn:
            declare_marking(
                conn,
                enterprise_id="E1",
                outlet_id="DA001",
                type="maintenance",
                start=datetime(2026, 11, 24, tzinfo=UTC),
                end=datetime(2026, 11, 25, tzinfo=UTC),
                factor=None,
                reason="检修",
                declared_by="ent1",
            )
        assert worker.refresh_markings() is True
        book = worker.rules.engine._markings
        t = int(datetime(2026, 11, 24, 6, tzinfo=UTC).timestamp())
        assert book.marking_at("E1", "DA001", "a21026", t) is not None
        assert worker.refresh_markings() is False  # taken up once
    finally:
        worker.archive.close()
        worker.engine.dispose()
        db.dispose()
        for end in (inbox, outbox, _parent_in, _parent_out):
            end.close()
