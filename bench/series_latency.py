"""Data-series answer times (nonsite/web/series.py) on an archive of a few hundred thousand
messages.

The archive holds a week of the typical CEMS mix per flue-gas outlet (real-time values every
30 s, CN 2011; 10-minute records, CN 2051; hour values, CN 2061; five factors each) and a
sample a minute per power meter. Timed, each the median of ``--rounds`` rounds over the
outlets or meters in turn:

  outlet 48 h        ``outlet_series`` for the last 48 h of the week, raw points included
  outlet 48 h hourly ... without the raw points (raw=false)
  outlet 31 d hourly the longest range, without the raw points
  meter 48 h         ``meter_series``
  latest 6 h         ``latest`` of the enterprise (all its outlets and meters)

first on the archive's own receive-time index, then with the topic index the reader adds
(its build time is reported too). The response is serialised to JSON inside the timing.

Writes bench/results/series.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.config.load import parse_config
from nonsite.web.series import SeriesReader

START = datetime(2026, 11, 13, tzinfo=CHINA_TZ)
FACTORS = {"a21026": 40.0, "a21002": 60.0, "a34013": 10.0, "a19001": 9.0, "a00000": 80.0}


def config(data_dir: Path, outlets: int, meters: int) -> dict:
    return {
        "service": {"data_dir": str(data_dir)},
        "enterprises": [
            {
                "id": "E1",
                "name": "bench",
                "outlets": [
                    {
                        "id": f"DA{k:03d}",
                        "kind": "gas",
                        "mn": f"MN{k:03d}",
                        "pw": "123456",
                        "preset": "thermal_power_coal_boiler",
                    }
                    for k in range(outlets)
                ],
                "meters": [
                    {"id": f"M{k:03d}", "role": "production", "rated_kw": 200}
                    for k in range(meters)
                ],
            }
        ],
    }


def packet(mn: str, cn: str, t: datetime, key: str, step: int) -> bytes:
    pol = {code: {key: base + step % 7 * 0.1, "Flag": "N"} for code, base in FACTORS.items()}
    [p] = data_packets(st="31", cn=cn, pw="123456", mn=mn, data_time=t, pollutants=pol, ack=False)
    return p


def traffic(outlets: int, meters: int, days: int) -> list[IncomingMessage]:
    out: list[IncomingMessage] = []
    for k in range(outlets):
        mn, topic = f"MN{k:03d}", f"hj212/MN{k:03d}"
        for step in range(days * 2880):
            t = START + timedelta(seconds=30 * step)
            out.append(
                IncomingMessage(to_us(t) + 1_000_000, topic, packet(mn, "2011", t, "Rtd", step))
            )
            if step % 20 == 0:
                out.append(
                    IncomingMessage(
                        to_us(t + timedelta(minutes=10)), topic, packet(mn, "2051", t, "Avg", step)
                    )
                )
            if step % 120 == 0:
                out.append(
                    IncomingMessage(
                        to_us(t + timedelta(hours=1, minutes=1)),
                        topic,
                        packet(mn, "2061", t, "Avg", step),
                    )
                )
    for k in range(meters):
        for step in range(days * 1440):
            t = START + timedelta(minutes=step)
            doc = {"ts": t.isoformat(), "p_kw": 100.0 + step % 13, "switch": "on"}
            out.append(
                IncomingMessage(to_us(t) + 2_000_000, f"power/M{k:03d}", json.dumps(doc).encode())
            )
    out.sort(key=lambda m: m.received_us)
    return out


def median_ms(fn: Callable[[int], object], rounds: int) -> float:
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outlets", type=int, default=10)
    ap.add_argument("--meters", type=int, default=10)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "series.json")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        messages = traffic(args.outlets, args.meters, args.days)
        archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
        for i in range(0, len(messages), 20_000):
            archive.append(messages[i : i + 20_000])
        size = archive.count()
        archive.close()
        print(f"archive: {size:,} messages, built in {time.perf_counter() - started:.1f} s")

        cfg = parse_config(config(data_dir, args.outlets, args.meters), "bench", env={})
        end = START + timedelta(days=args.days)
        since_48h = end - timedelta(hours=48)
        now = end + timedelta(minutes=5)

        def cases(reader: SeriesReader) -> dict[str, Callable[[int], object]]:
            def outlet(i: int) -> str:
                return f"DA{i % args.outlets:03d}"

            return {
                "outlet 48 h": lambda i: reader.outlet_series(
                    "E1", outlet(i), since_48h, end, now=now
                ).model_dump_json(),
                "outlet 48 h hourly": lambda i: reader.outlet_series(
                    "E1", outlet(i), since_48h, end, raw=False, now=now
                ).model_dump_json(),
                "outlet 31 d hourly": lambda i: reader.outlet_series(
                    "E1", outlet(i), end - timedelta(days=31), end, raw=False, now=now
                ).model_dump_json(),
                "meter 48 h": lambda i: reader.meter_series(
                    "E1", f"M{i % args.meters:03d}", since_48h, end, now=now
                ).model_dump_json(),
                "latest 6 h": lambda _i: reader.latest("E1", now=now).model_dump_json(),
            }

        results: dict[str, dict[str, float]] = {}
        plain = SeriesReader(cfg, data_dir / "archive.sqlite3", build_index=False)
        results["receive-time index"] = {
            name: median_ms(fn, args.rounds) for name, fn in cases(plain).items()
        }
        indexed = SeriesReader(cfg, data_dir / "archive.sqlite3")
        started = time.perf_counter()
        assert indexed.ensure_topic_index(wait=True)
        index_s = time.perf_counter() - started
        results["topic index"] = {
            name: median_ms(fn, args.rounds) for name, fn in cases(indexed).items()
        }
        points = indexed.outlet_series("E1", "DA000", since_48h, end, now=now)
        raw_points = sum(len(v) for v in points.raw.values())

    print(f"topic index built in {index_s:.2f} s")
    print(f"outlet 48 h: {raw_points:,} raw points")
    names = list(results["topic index"])
    print(f"{'ms (median)':<22}" + "".join(f"{n:>20}" for n in names))
    for label, row in results.items():
        print(f"{label:<22}" + "".join(f"{row[n]:>20.0f}" for n in names))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "archive_messages": size,
                "outlets": args.outlets,
                "meters": args.meters,
                "days": args.days,
                "raw_points_48h": raw_points,
                "topic_index_build_s": round(index_s, 3),
                "median_ms": {
                    k: {n: round(v, 1) for n, v in r.items()} for k, r in results.items()
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
