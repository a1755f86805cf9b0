"""The issue's cross-check at full size: a simulated month of 200 enterprises with injected
faults (about 4.8 M readings) through the streaming engine (restarted from a snapshot halfway)
and the batch engine; the findings must be equal, finding by finding.

The test suite runs the same check on a month of 40 enterprises
(tests/rules/test_stream_equals_batch.py); this runs the 200-enterprise month with the test's
own helpers and assertions, and reports how long each part took and whether they held.

Writes bench/results/stream_equals_batch.json and prints a summary. Exits 1 when the findings
differ.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rules.test_stream_equals_batch import (
    assert_stream_equals_batch,
    batch_findings,
    month_of,
    stream_findings,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=200)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    month = month_of(args.enterprises)
    t1 = time.perf_counter()
    streamed, s = stream_findings(month)
    t2 = time.perf_counter()
    batched, b = batch_findings(month)
    t3 = time.perf_counter()
    error = None
    kinds: dict[str, int] = {}
    try:
        counts = assert_stream_equals_batch(streamed, batched, s, b)
        kinds = {f"{rule} {state}": n for (rule, state), n in sorted(counts.items())}
    except AssertionError as e:
        error = str(e) or repr(e)
    n = len(month.readings)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "enterprises": args.enterprises,
        "days": 30,
        "readings": n,
        "findings_stream": len(streamed),
        "findings_batch": len(batched),
        "equal": error is None,
        "error": error,
        "generate_s": round(t1 - t0, 1),
        "stream_s": round(t2 - t1, 1),
        "stream_readings_per_s": round(n / (t2 - t1)),
        "batch_s": round(t3 - t2, 1),
        "batch_readings_per_s": round(n / (t3 - t2)),
        "total_s": round(t3 - t0, 1),
        "kinds": kinds,
    }
    out = args.output or Path(__file__).parent / "results" / "stream_equals_batch.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'enterprises × days':<34}{args.enterprises:>12} × 30")
    print(f"{'readings':<34}{n:>12,}")
    print(f"{'generate the month':<34}{t1 - t0:>12.1f} s")
    print(f"{'stream (with a restart)':<34}{t2 - t1:>12.1f} s  {n / (t2 - t1):>12,.0f} readings/s")
    print(f"{'batch':<34}{t3 - t2:>12.1f} s  {n / (t3 - t2):>12,.0f} readings/s")
    print(f"{'findings (stream, batch)':<34}{len(streamed):>12,}  {len(batched):,}")
    print(f"{'equal, every rule fired':<34}{'yes' if error is None else 'NO: ' + error:>12}")
    print(f"{'rule kinds':<34}{len(kinds):>12}")
    if error is not None:
        sys.exit(1)


if __name__ == "__main__":
    main()
