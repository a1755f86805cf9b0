"""The rule stage inside ``nonsite serve``: findings are stored, and a restart mid-window
neither loses the window's data nor duplicates a finding."""

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine

from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from rules.store import load_snapshot
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess, write_config
from tests.service_process import wait_for as wait

pytestmark = pytest.mark.integration

MN = "33010000A8900016F0000101"
HOUR0 = datetime(2026, 11, 20, 3, 0, tzinfo=CHINA_TZ)


def minute_frame(at: datetime, so2: float) -> tuple[str, bytes]:
    pollutants = {"a21026": {"Avg": so2, "Flag": "N"}, "a19001": {"Avg": 6.0, "Flag": "N"}}
    [p] = data_packets(
        st="31", cn="2051", pw="123456", mn=MN, data_time=at, pollutants=pollutants, ack=False
    )
    return f"hj212/{MN}", p


def findings(config) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "nonsite", "findings", "--config", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


def wait_for(predicate, timeout=30.0):
    return wait(predicate, timeout, every=0.2)


def test_hourly_exceedance_found_once_across_a_kill_in_the_middle_of_the_hour(mosquitto, tmp_path):
    config = write_config(
        tmp_path / "n.toml", broker_url=mosquitto.url, data_dir=tmp_path / "d", mns=[MN], extra=""
    )
    text = config.read_text().replace(
        'kind = "gas"', 'kind = "gas"\npreset = "thermal_power_coal_boiler"'
    )
    config.write_text(text + "[rules]\ngrace_s = 60\nsnapshot_every_s = 0.2\n")
    service = ServiceProcess.started(config)
    pub = Publisher(mosquitto.host, mosquitto.port)
    so2 = [148.0, 151.0, 149.5, 150.5, 152.0, 149.0]  # mean 150: above the 100 mg/m³ alarm limit
    pub.publish_all(
        [minute_frame(HOUR0 + timedelta(minutes=10 * i), v) for i, v in enumerate(so2[:3])]
    )
    assert wait_for(
        lambda: 'nonsite_rule_readings_total{outcome="judged"} 6.0' in service.metrics()
    )
    db = create_engine(f"sqlite:///{tmp_path / 'd' / 'nonsite.db'}")
    assert wait_for(lambda: (load_snapshot(db, "rules") or (0,))[0] >= 3)  # the half-filled hour
    service.kill()
    service.start()
    pub.publish_all(
        [minute_frame(HOUR0 + timedelta(minutes=10 * i), v) for i, v in enumerate(so2) if i >= 3]
    )
    pub.publish_all(
        [minute_frame(HOUR0 + timedelta(minutes=70), 40.0)]
    )  # closes 03:00-04:00 (grace 60 s)
    assert wait_for(lambda: any(f["rule"] == "A3" for f in findings(config)))
    service.kill()  # and once more: the replay after this restart must not store it again
    service.start()
    time.sleep(2)
    a3 = [f for f in findings(config) if f["rule"] == "A3"]
    assert len(a3) == 1
    [f] = a3
    assert (f["state"], f["tier"], f["factor"]) == ("fire", "alarm", "a21026")
    assert f["window_start"] == HOUR0.isoformat()
    assert f["value"] == pytest.approx(150.0)
    assert f["evidence"]["valid_minutes"] == 60  # the minutes before the kill were not lost
    assert f["limit"] == 100
    pub.close()
    assert service.terminate() == 0
