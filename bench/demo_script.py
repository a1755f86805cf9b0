"""How soon the README's demo plays its script: the "two minutes" of ``./dev demo``.

Runs ``nonsite demo`` as the README does (its own data directory and a free dashboard port
added) and watches it as ``tests/nonsite/test_demo.py`` does, once a second: the status line's
simulated time, and the cases in its database. For each scripted case: the wall seconds after
the dashboard was printed when it appeared, and the simulated time the demo had reached then.

Why here and not in the test: the demo sends its history 1200 times faster than the clock, and
whether a host keeps that pace is a matter of its speed and of what else runs on it (the
test suite runs in two processes on two cores). The test checks that the script plays; this
measures how soon, beside the baselines measured in the same run:

- the host's speed: a fixed pure-Python loop, timed before the demo starts;
- the pace the demo kept while it sent its history: simulated seconds per wall second, as a
  fraction of ``--speed`` (1.0: it kept up);
- the CPU it used while it did, in cores, the service's process (broker, ingest, simulator)
  and the pipeline's process apart.

``--neighbours N`` runs N CPU-bound processes beside it, as the other half of the test suite
would be. Writes bench/results/demo.json (``--out``; a run alone under "alone", one beside N
neighbours under "beside_N_busy") and prints the run's figures.

Usage: python bench/demo_script.py [--neighbours 1] [--out bench/results/demo.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.china_time import CHINA_TZ
from nonsite.demo import DemoSettings, demo_config, history_start, status_sim_time
from nonsite.embedded_broker import free_port
from nonsite.simulator.incidents import FOREVER
from rules.timebase import DAY, HOUR

PROMISED_S = 120  # the README: every scripted incident has its case within two minutes
LOOP_N = 20_000_000
PHASE = re.compile(r"模拟时间 \S+ \S+ (追赶历史|实时)")  # the status line's phase
TICK = os.sysconf("SC_CLK_TCK")


def python_loop_s() -> float:
    """Seconds for a fixed pure-Python loop: the host's speed for the interpreter."""
    began = time.perf_counter()
    total = 0
    for i in range(LOOP_N):
        total += i
    assert total > 0
    return time.perf_counter() - began


def _busy() -> None:
    while True:
        pass


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def china(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, CHINA_TZ).strftime("%m-%d %H:%M")


def watch(data_dir: Path, port: int, timeout_s: float) -> dict[str, Any]:
    now = time.time()
    settings = DemoSettings(data_dir=data_dir, http_port=port)
    start = history_start(settings.days, now)
    script = demo_config(settings, start, int(now) + DAY)[1]
    expected = {(i.enterprise_id, rule) for i in script for rule, _tier in i.expect}
    # As the test: until every scripted window has been judged (its end, the grace of an hour
    # and two to spare), or the history has reached the present.
    judged_by = min(int(now), max(i.end for i in script if i.end < FOREVER) + 3 * HOUR)
    demo = subprocess.Popen(
        [sys.executable, "-m", "nonsite", "demo", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert demo.stdout is not None
    output = bytearray()
    pipe = demo.stdout

    def read() -> None:
        while chunk := pipe.read1(65536):
            output.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    appeared: dict[tuple[str, str], tuple[float, int | None]] = {}
    shown_at: float | None = None
    caught_up: dict[str, float] = {}
    cpu0: dict[str, float] = {}
    reached: int | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and demo.poll() is None:
            time.sleep(1)
            text = output.decode(errors="replace")
            if shown_at is None:
                if "dashboard http" not in text:
                    continue
                shown_at = time.monotonic()
                pipeline = children(demo.pid)
                cpu0 = {"service": cpu_seconds(demo.pid)}
                cpu0 |= {"pipeline": sum(cpu_seconds(p) for p in pipeline)}
            wall = time.monotonic() - shown_at
            reached = status_sim_time(text, start)
            if not caught_up and PHASE.findall(text)[-1:] == ["实时"]:
                caught_up = {"wall_s": wall, "service": cpu_seconds(demo.pid)}
                caught_up["pipeline"] = sum(cpu_seconds(p) for p in children(demo.pid))
            with sqlite3.connect(f"file:{data_dir / 'nonsite.db'}?mode=ro", uri=True) as db:
                for enterprise, rule in db.execute("select enterprise_id, rule from cases"):
                    appeared.setdefault((enterprise, rule), (wall, reached))
            if expected <= set(appeared) and reached is not None and reached >= judged_by:
                break
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)
        reader.join(5)
    cases = {
        f"{e} {r}": {"wall_s": round(w, 1), "simulated": china(sim)}
        for (e, r), (w, sim) in sorted(appeared.items(), key=lambda kv: kv[1][0])
        if (e, r) in expected
    }
    last = max((w for k, (w, _s) in appeared.items() if k in expected), default=None)
    history_s = (int(now) - start) / settings.speed  # the history's wall time at full pace
    result: dict[str, Any] = {
        "speed": settings.speed,
        "history_hours": round((int(now) - start) / HOUR, 1),
        "history_at_full_pace_s": round(history_s, 1),
        "cases": cases,
        "missing": sorted(f"{e} {r}" for e, r in expected - set(appeared)),
        "last_case_s": None if last is None else round(last, 1),
        "within_two_minutes": last is not None and last <= PROMISED_S and expected <= set(appeared),
        "reached": china(reached),
    }
    if caught_up:
        wall = caught_up["wall_s"]
        result["history_wall_s"] = round(wall, 1)
        result["pace"] = round(history_s / wall, 2)
        result["cpu_cores_during_history"] = {
            part: round((caught_up[part] - cpu0[part]) / wall, 2) for part in cpu0
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--neighbours", type=int, default=0, help="CPU-bound processes beside it")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to watch at most")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "demo.json")
    args = ap.parse_args()
    loop_s = python_loop_s()
    spawn = multiprocessing.get_context("spawn")
    busy = [spawn.Process(target=_busy, daemon=True) for _ in range(args.neighbours)]
    for p in busy:
        p.start()
    try:
        with tempfile.TemporaryDirectory(prefix="nonsite-demo-bench-") as tmp:
            result = watch(Path(tmp) / "demo-data", free_port(), args.timeout)
    finally:
        for p in busy:
            p.terminate()
    result = {
        "when": datetime.now(CHINA_TZ).isoformat(timespec="seconds"),
        "host": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            f"python_loop_{LOOP_N // 1_000_000}M_s": round(loop_s, 3),
        },
        "neighbours": args.neighbours,
        **result,
    }
    # One file, a run alone and a run beside busy neighbours each under its own key.
    key = "alone" if args.neighbours == 0 else f"beside_{args.neighbours}_busy"
    kept = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(kept | {key: result}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
