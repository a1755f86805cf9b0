"""A logger speaks only for itself: data reach an outlet only from that outlet's own topic.

Through a real Mosquitto into a real ``nonsite serve``: an attacker's logger publishes on its
own topic ``hj212/<its MN>`` frames that carry a victim enterprise's MN, once with the
victim's right PW and once with a wrong one, each an exceedance. None of them may become a
finding, a case, a notification or a point on the victim's chart; each is a dead letter with
the reason ``foreign_mn``. A gateway configured to carry the victim's MN is accepted on its
own topic, and the case and the chart then read the same data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases
from ingest.china_time import CHINA_TZ
from ingest.store import dead_letters
from nonsite.config.load import load_config
from nonsite.db import make_engine
from nonsite.web.api.series import ARCHIVE_FILE
from nonsite.web.series import SeriesReader
from rules.store import findings
from tests.mqtt_tools import Publisher
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, count, gas_hours, wait_for

pytestmark = pytest.mark.integration

ATTACKER_MN = "33010000000000000000A0001"
VICTIM_MN = "33010000000000000000V0001"
GATEWAY = "GW-PARK-01"
# Recent hours: the chart reads the archive by receive time around the data's days.
HOUR0 = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)


def write_config(path: Path, broker_url: str, data_dir: Path, db_url: str, gateway: bool) -> Path:
    lines = [
        *service_lines(
            broker_url=broker_url,
            data_dir=data_dir,
            client_id="nonsite-attribution-test",
            db_url=db_url,
        ),
        "[rules]",
        "grace_s = 60",
        "snapshot_every_s = 0.5",
        "[alerts]",
        "flap_window_min = 0",
    ]
    if gateway:
        lines += [
            "[[gateways]]",
            f'id = "{GATEWAY}"',
            'name = "园区网关"',
            f'mns = ["{VICTIM_MN}"]',
        ]
    for ent, mn, pw in (("ATTACKER", ATTACKER_MN, "Atk-7731"), ("VICTIM", VICTIM_MN, "Vic-2290")):
        lines += gas_enterprise(ent, f"企业{ent}", mn, pw)
    return write_lines(path, lines)


def hours_of_frames(
    topic: str, mn: str, pw: str, hours: int, so2: float
) -> list[tuple[str, bytes]]:
    """Six 10-minute packets per hour, plus one that closes the last hour."""
    return [(topic, p) for p in gas_hours(mn, pw, HOUR0, hours, so2)]


@contextmanager
def served(
    tmp_path: Path, mosquitto, db_url: str, gateway: bool
) -> Iterator[tuple[ServiceProcess, sa.Engine, Path]]:
    """A running service of the two enterprises (and the gateway), its database, its config."""
    config = write_config(tmp_path / "n.toml", mosquitto.url, tmp_path / "d", db_url, gateway)
    service = ServiceProcess.started(config)
    db = make_engine(db_url)
    try:
        yield service, db, config
    finally:
        db.dispose()
        service.terminate()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_logger_cannot_speak_for_another_enterprise(db_url, mosquitto, tmp_path):
    with served(tmp_path, mosquitto, db_url, False) as (service, db, config):
        pub = Publisher(mosquitto.host, mosquitto.port)
        own_topic = f"hj212/{ATTACKER_MN}"
        # The attacker's own data (normal), then forged exceedances for the victim with the
        # victim's right PW (a shared or leaked password) and with a wrong one.
        own = hours_of_frames(own_topic, ATTACKER_MN, "Atk-7731", 3, 40.0)
        forged_right_pw = hours_of_frames(own_topic, VICTIM_MN, "Vic-2290", 3, 400.0)
        forged_wrong_pw = hours_of_frames(own_topic, VICTIM_MN, "123456", 1, 400.0)
        forged = len(forged_right_pw) + len(forged_wrong_pw)
        pub.publish_all(own + forged_right_pw + forged_wrong_pw)
        pub.close()
        foreign = sa.select(sa.func.count()).select_from(dead_letters)
        foreign = foreign.where(dead_letters.c.reason == "foreign_mn")
        assert wait_for(lambda: count(db, foreign) >= forged), (
            count(db, foreign),
            service.log_text(),
        )
        time.sleep(2.0)  # rules and cases would have followed by now
        with db.connect() as conn:
            letters = conn.execute(
                sa.select(dead_letters).where(dead_letters.c.reason == "foreign_mn")
            ).all()
            victim_findings = conn.execute(
                sa.select(sa.func.count())
                .select_from(findings)
                .where(findings.c.enterprise_id == "VICTIM")
            ).scalar_one()
            victim_cases = conn.execute(
                sa.select(sa.func.count())
                .select_from(cases)
                .where(cases.c.enterprise_id == "VICTIM")
            ).scalar_one()
        assert len(letters) == forged
        for letter in letters:
            assert letter.topic == own_topic
            assert letter.mn == VICTIM_MN
            assert ATTACKER_MN in letter.detail and VICTIM_MN in letter.detail
        assert victim_findings == 0
        assert victim_cases == 0
        # The attacker's own frames were used: the path works, only the forgery was refused.
        attacker = sa.select(sa.func.count()).select_from(dead_letters)
        attacker = attacker.where(dead_letters.c.mn == ATTACKER_MN)
        assert count(db, attacker) == 0
        cfg = load_config(config)
        reader = SeriesReader(cfg, cfg.service.data_dir / ARCHIVE_FILE)
        victim_chart = reader.outlet_series("VICTIM", "DA001", HOUR0, HOUR0 + timedelta(hours=4))
        assert not victim_chart.hourly
        own_chart = reader.outlet_series("ATTACKER", "DA001", HOUR0, HOUR0 + timedelta(hours=4))
        assert own_chart.hourly


def test_a_configured_gateway_speaks_for_its_mns_and_the_case_and_chart_agree(mosquitto, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'n.db'}"
    with served(tmp_path, mosquitto, db_url, True) as (service, db, config):
        pub = Publisher(mosquitto.host, mosquitto.port)
        via_gateway = hours_of_frames(f"hj212/{GATEWAY}", VICTIM_MN, "Vic-2290", 2, 400.0)
        # The gateway may not speak for an MN it does not list.
        not_listed = hours_of_frames(f"hj212/{GATEWAY}", ATTACKER_MN, "Atk-7731", 1, 400.0)
        pub.publish_all(via_gateway + not_listed)
        pub.close()
        a3 = sa.select(sa.func.count()).select_from(findings)
        a3 = a3.where(findings.c.enterprise_id == "VICTIM", findings.c.rule == "A3")
        assert wait_for(lambda: count(db, a3) >= 2), service.log_text()
        foreign = sa.select(sa.func.count()).select_from(dead_letters)
        foreign = foreign.where(dead_letters.c.reason == "foreign_mn")
        assert wait_for(lambda: count(db, foreign) == len(not_listed)), service.log_text()
        cfg = load_config(config)
        reader = SeriesReader(cfg, cfg.service.data_dir / ARCHIVE_FILE)
        chart = reader.outlet_series("VICTIM", "DA001", HOUR0, HOUR0 + timedelta(hours=3))
        so2_hours = [p for p in chart.hourly["a21026"] if p.value is not None]
        assert len(so2_hours) >= 2 and all(p.value > 300 for p in so2_hours)
        attacker_chart = reader.outlet_series(
            "ATTACKER", "DA001", HOUR0, HOUR0 + timedelta(hours=3)
        )
        assert not attacker_chart.hourly
