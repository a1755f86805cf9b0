"""``nonsite replay``: history through the rules; ``--backtest`` with changed thresholds."""

import json
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.replay import in_window_order, window_order
from rules.findings import Finding
from tests.service_process import run_nonsite

EXAMPLE = Path(__file__).parents[2] / "deploy" / "nonsite.example.toml"
BOILER_MN = "33010000A8900016F0000201"  # E002 in the example: SO2 hour alarm 200 mg/m³ @ 9 % O2
H0 = datetime(2026, 11, 20, 9, 0, tzinfo=CHINA_TZ)


def minute_frames(hours: int, pollutants) -> list[bytes]:
    """The boiler's 10-minute packets (CN 2051) of ``hours`` hours; ``pollutants(h, i)`` gives
    the i-th record's factors of hour h."""
    frames = []
    for h in range(hours):
        for i in range(6):
            [p] = data_packets(
                st="31",
                cn="2051",
                pw="pW2n-6Yc4",  # E002 DA001 in the example
                mn=BOILER_MN,
                data_time=H0 + timedelta(hours=h, minutes=10 * i),
                pollutants=pollutants(h, i),
                ack=False,
            )
            frames.append(p.rstrip(b"\r\n"))
    return frames


def boiler_hours(values: list[float]) -> list[bytes]:
    return minute_frames(
        len(values),
        lambda h, i: {
            "a21026": {"Avg": values[h] + (i - 2.5) * 0.2, "Flag": "N"},
            "a19001": {"Avg": 9.0, "Flag": "N"},
        },
    )


def nonsite(*args: str, stdin: bytes = b""):
    return run_nonsite(*args, stdin=stdin, timeout=120)


def findings(result) -> list[dict]:
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_replay_of_hj212_lines_prints_the_findings(tmp_path):
    lines = tmp_path / "frames.txt"
    lines.write_bytes(b"\n".join(boiler_hours([170.0, 250.0, 120.0])) + b"\n")
    result = nonsite("replay", "--config", str(EXAMPLE), "--no-absence", str(lines))
    a3 = [f for f in findings(result) if f["rule"] == "A3"]
    assert [(f["state"], f["tier"], f["window_start"]) for f in a3] == [
        ("fire", "warning", H0.isoformat()),  # 170 > 0.8 × 200
        ("fire", "alarm", (H0 + timedelta(hours=1)).isoformat()),
        ("clear", "alarm", (H0 + timedelta(hours=2)).isoformat()),
    ]
    assert a3[1]["value"] == 250.0
    assert a3[1]["enterprise_id"] == "E002"
    assert "36 readings" in result.stderr.decode()


def test_backtest_shows_what_changed_thresholds_would_have_found(tmp_path):
    lines = tmp_path / "frames.txt"
    lines.write_bytes(b"\n".join(boiler_hours([170.0, 250.0, 120.0])) + b"\n")
    changed = tmp_path / "stricter.toml"
    changed.write_text(EXAMPLE.read_text().replace("hour_alarm = 200", "hour_alarm = 140"))
    result = nonsite(
        "replay", "--config", str(EXAMPLE), "--backtest", str(changed), "--no-absence", str(lines)
    )
    diff = {
        (f["backtest"], f["rule"], f["state"], f["tier"], f["window_start"])
        for f in findings(result)
    }
    first = H0.isoformat()
    assert ("added", "A3", "fire", "alarm", first) in diff  # 170 is now an alarm
    assert ("removed", "A3", "fire", "warning", first) in diff


def test_replay_reads_an_archive_and_its_json_export(tmp_path):
    archive = RawArchive(tmp_path / "archive.sqlite3")
    frames = boiler_hours([170.0, 250.0, 120.0])
    archive.append(
        [
            IncomingMessage(to_us(H0 + timedelta(minutes=10 * i + 11)), f"hj212/{BOILER_MN}", f)
            for i, f in enumerate(frames)
        ]
    )
    power = {"meter": "E006-M01", "ts": (H0 + timedelta(minutes=5)).isoformat(), "p_kw": 30.0}
    archive.append(
        [
            IncomingMessage(
                to_us(H0 + timedelta(minutes=6)), "power/E006-M01", json.dumps(power).encode()
            )
        ]
    )
    archive.close()
    direct = findings(
        nonsite("replay", "--config", str(EXAMPLE), str(tmp_path / "archive.sqlite3"))
    )
    exported = subprocess.run(
        [sys.executable, "-m", "nonsite", "archive", "export", "--format", "json"],
        capture_output=True,
        check=True,
        env={"NONSITE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
    )
    via_export = findings(nonsite("replay", "--config", str(EXAMPLE), "-", stdin=exported.stdout))
    assert [f["id"] for f in direct] == [f["id"] for f in via_export]
    # The single power sample's meter then stays silent for hours: C8 (meter offline).
    assert {f["rule"] for f in direct} >= {"A3", "C8"}


def test_o2_reference_prints_the_fleet_percentile_per_preset_as_configuration(tmp_path):
    """B8-1's reference: the 90th percentile of the valid hourly O2 while flue gas flows."""
    frames = minute_frames(  # O2 7.0, 7.5, ... 11.5 % in ten hours; flow 50 m³/s
        10,
        lambda h, i: {
            "a19001": {"Avg": 7.0 + 0.5 * h + (i - 2.5) * 0.01, "Flag": "N"},
            "a00000": {"Avg": 50.0 + i, "Flag": "N"},
        },
    )
    lines = tmp_path / "frames.txt"
    lines.write_bytes(b"\n".join(frames) + b"\n")
    result = nonsite("replay", "--config", str(EXAMPLE), "--o2-reference", str(lines))
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "[rules.o2_reference_by_preset]" in text
    # linear interpolation of 7.0 … 11.5 at 0.9: 7.0 + 0.5 × 8.1
    assert "industrial_boiler_coal = 11.05  # 10 hours of 1 outlets" in text


def test_findings_are_given_in_window_order():
    # Sorted by one integer per finding (ranks of the names): the same order as the tuples',
    # with windows, rules, sources and factors tying in every way and factors absent.
    pick = random.Random(5)
    found = [
        Finding(
            pick.choice(["A3", "A2", "B10", "B7"]),
            pick.choice(["fire", "clear"]),
            pick.choice(["E2", "E10", "E1"]),
            pick.choice(["DA001", "DA002", "M1"]),
            pick.choice([None, "a21026", "a21002", ""]),
            1_790_000_000 + 3600 * pick.randrange(4),
            0,
        )
        for _ in range(2000)
    ]
    assert in_window_order(found) == sorted(found, key=window_order)
    assert in_window_order([]) == []
