"""A meter's series when an HJ 212 logger reports it: ST=44 power values from a logger of its
own and CN 2021 running states from the outlet's logger are read from their ``hj212`` topics;
a state-only sample has no power (``p_kw`` null) but its switch state."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.hj212.model import CpValue
from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.web.series import SeriesReader

T0 = datetime(2026, 3, 2, 8, tzinfo=CHINA_TZ)
CEMS, POWER = "MN-CEMS-1", "MN-POWER-1"


def config(data_dir: Path) -> Config:
    doc = {
        "service": {"data_dir": str(data_dir)},
        "enterprises": [
            {
                "id": "E1",
                "name": "甲",
                "outlets": [{"id": "DA001", "kind": "gas", "mn": CEMS, "pw": "1"}],
                "meters": [
                    {"id": "LINE", "role": "production", "rated_kw": 200, "mn": POWER,
                     "code": "d20405"},
                    {"id": "FAN", "role": "control", "rated_kw": 50, "serves": ["LINE"],
                     "mn": CEMS, "code": "SB1"},
                ],
            }
        ],
    }  # fmt: skip
    return parse_config(doc, "test", env={})


def packet(mn: str, st: str, cn: str, at: datetime, values: dict[str, dict[str, CpValue]]) -> bytes:
    [p] = data_packets(st=st, cn=cn, pw="1", mn=mn, data_time=at, pollutants=values, ack=False)
    return p


def test_meter_series_reads_the_loggers_that_report_the_meters(tmp_path):
    archive = RawArchive(tmp_path / "archive.sqlite3")
    messages = []
    for k, (kw, rs) in enumerate([(150.0, 1), (0.5, 3)]):
        at = T0 + timedelta(minutes=k)
        received = to_us(at + timedelta(seconds=5))
        power = packet(POWER, "44", "2011", at, {"d20405": {"Rtd": kw, "Flag": "N"}})
        state = packet(CEMS, "31", "2021", at, {"SB1": {"RS": rs}})
        messages += [
            IncomingMessage(received, f"hj212/{POWER}", power),
            IncomingMessage(received, f"hj212/{CEMS}", state),
        ]
    archive.append(messages)
    reader = SeriesReader(config(tmp_path), tmp_path / "archive.sqlite3", build_index=False)
    span = {"since": T0, "until": T0 + timedelta(hours=1)}

    line = reader.meter_series("E1", "LINE", **span)
    assert [(s.t, s.p_kw, s.switch_on) for s in line.samples] == [
        (T0, 150.0, None),
        (T0 + timedelta(minutes=1), 0.5, None),
    ]
    fan = reader.meter_series("E1", "FAN", **span)
    assert [(s.p_kw, s.switch_on) for s in fan.samples] == [(None, True), (None, False)]
    assert fan.latest is not None and fan.latest.model_dump(mode="json")["p_kw"] is None

    latest = reader.latest("E1", now=T0 + timedelta(minutes=5))
    by_meter = {m.meter_id: m.sample for m in latest.meters}
    assert by_meter["LINE"] is not None and by_meter["LINE"].p_kw == 0.5
    assert by_meter["FAN"] is not None and by_meter["FAN"].switch_on is False
