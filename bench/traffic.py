"""A fixed, repeatable mix of simulated traffic for the benchmarks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets

T0 = datetime(2026, 11, 21, 0, 0, tzinfo=CHINA_TZ)
# A typical flue-gas CEMS real-time upload: 8 factors with value and flag, some converted.
FACTORS_8 = ["a21026", "a21002", "a34013", "a19001", "a01012", "a01013", "a01014", "a00000"]


def mn(i: int) -> str:
    return f"33010000A8900016F{i:07d}"


def cn2011_frame(i: int, outlets: int = 200) -> bytes:
    when = T0 + timedelta(seconds=30 * (i // outlets))
    pollutants: dict[str, dict[str, float | str]] = {}
    for k, code in enumerate(FACTORS_8):
        values: dict[str, float | str] = {"Rtd": round(10.0 + (i * 7 + k * 13) % 900 / 10, 2)}
        if code in ("a21026", "a21002", "a34013"):
            values["ZsRtd"] = round(float(values["Rtd"]) * 1.08, 2)  # type: ignore[arg-type]
        values["Flag"] = "N"
        pollutants[code] = values
    [packet] = data_packets(
        st="31",
        cn="2011",
        pw="123456",
        mn=mn(i % outlets),
        data_time=when,
        pollutants=pollutants,
        qn_time=when + timedelta(milliseconds=i % 1000),
    )
    return packet


def cn2051_frame(i: int, outlets: int = 200) -> bytes:
    when = T0 + timedelta(minutes=10 * (i // outlets))
    pollutants = {
        code: {"Avg": 12.5, "Min": 10.0, "Max": 15.0, "Cou": 0.25, "Flag": "N"}
        for code in FACTORS_8[:4]
    }
    [packet] = data_packets(
        st="31", cn="2051", pw="123456", mn=mn(i % outlets), data_time=when, pollutants=pollutants
    )
    return packet


def power_json(i: int, meters: int = 100) -> bytes:
    ts = (T0 + timedelta(minutes=i // meters)).isoformat()
    return json.dumps(
        {
            "meter": f"M{i % meters:03d}",
            "ts": ts,
            "p_kw": 40.0 + i % 50,
            "i_a": [60.1, 59.8, 60.4],
            "e_kwh": 1000 + i,
            "switch": "on",
        }
    ).encode()


def mix(n: int) -> list[tuple[str, bytes]]:
    """80 % real-time frames, 15 % minute frames, 5 % power readings; every payload unique."""
    out = []
    for i in range(n):
        r = i % 20
        if r < 16:
            out.append((f"hj212/{mn(i % 200)}", cn2011_frame(i)))
        elif r < 19:
            out.append((f"hj212/{mn(i % 200)}", cn2051_frame(i)))
        else:
            out.append((f"power/M{i % 100:03d}", power_json(i)))
    return out
