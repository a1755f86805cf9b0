"""`nonsite decode` against real HJ 212 frames collected from public repositories.

The frames, their sources and their expected outcomes live in corpus/public_frames.jsonl. The
expectations were derived by corpus/derive_expectations.py, a stdlib-only checker written from
the wire-format summary and independent of the project's `ingest` package (see corpus/README.md).

The CLI contract checked here: `python -m nonsite decode FILE` reads one frame per input line and
prints one JSON object per line, in order. A decoded frame prints "ok": true, "mn", "st", "cn",
"version", "data_time" (when the CP has a DataTime) and "cp", whose keys include every pollutant
code (2005 codes mapped to 2017 ones) mapped to a dict of that code's fields. A rejected frame
prints "ok": false, "error": <reason code> and "detail"; a CRC that only CRC-16/MODBUS explains
also carries "modbus": true.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.ingest.hj212.corpus_checker import CORPUS_DIR, load_checker

CORPUS = CORPUS_DIR / "public_frames.jsonl"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _records() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _compare(expect: dict[str, Any], got: Any) -> list[str]:
    """Differences between one expectation and one CLI output object."""
    if not isinstance(got, dict):
        return [f"output is not a JSON object: {got!r}"]
    problems: list[str] = []
    if got.get("ok") is not expect["ok"]:
        problems.append(f"ok={got.get('ok')!r}, expected {expect['ok']!r}")
        return problems
    if not expect["ok"]:
        if got.get("error") != expect["error"]:
            problems.append(f"error={got.get('error')!r}, expected {expect['error']!r}")
        if expect.get("modbus") and got.get("modbus") is not True:
            problems.append(f"modbus={got.get('modbus')!r}, expected true")
        return problems
    for key in ("mn", "st", "cn", "version"):
        if got.get(key) != expect[key]:
            problems.append(f"{key}={got.get(key)!r}, expected {expect[key]!r}")
    if got.get("data_time") != expect["data_time"]:
        problems.append(f"data_time={got.get('data_time')!r}, expected {expect['data_time']!r}")
    cp = got.get("cp")
    if not isinstance(cp, dict):
        problems.append(f"cp is {type(cp).__name__}, expected an object")
        return problems
    missing = [c for c in expect["codes"] if not isinstance(cp.get(c), dict)]
    if missing:
        problems.append(f"cp lacks a field dict for {missing} (cp keys: {sorted(cp)})")
    return problems


def test_decode_cli_matches_public_corpus(tmp_path: Path) -> None:
    records = _records()
    frames = tmp_path / "public_frames.txt"
    frames.write_text("".join(r["frame"] + "\n" for r in records), encoding="utf-8")

    proc = subprocess.run(
        [sys.executable, "-m", "nonsite", "decode", str(frames)],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    lines = [ln for ln in proc.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    assert len(lines) == len(records), (
        f"`nonsite decode` printed {len(lines)} lines for {len(records)} frames "
        f"(exit {proc.returncode}); stderr:\n{proc.stderr.decode('utf-8', 'replace')[-2000:]}"
    )

    failures: list[str] = []
    for number, (record, line) in enumerate(zip(records, lines, strict=True), start=1):
        try:
            got: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            got = f"<not JSON: {exc}: {line[:200]}>"
        problems = _compare(record["expect"], got)
        if problems:
            failures.append(
                f"#{number} {record['source']}\n"
                f"    frame:    {record['frame'][:160]}\n"
                f"    expected: {json.dumps(record['expect'], ensure_ascii=False)}\n"
                f"    got:      {line[:400]}\n"
                f"    problems: {'; '.join(problems)}"
                + (f"\n    note:     {record['note']}" if record.get("note") else "")
            )
    assert not failures, (
        f"{len(failures)} of {len(records)} public frames decoded differently:\n"
        + "\n".join(failures)
    )


def test_expectations_are_what_the_independent_checker_derives() -> None:
    checker = load_checker()
    records = checker.load(CORPUS)
    assert records, "the corpus is empty"
    assert CORPUS.read_text(encoding="utf-8") == checker.render(checker.rederive(records)), (
        "public_frames.jsonl differs from what derive_expectations.py derives; run "
        "`python tests/ingest/hj212/corpus/derive_expectations.py` to see the differences"
    )


def test_checker_crc_matches_published_vectors() -> None:
    checker = load_checker()
    vector = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    assert checker.crc_hj212(vector) == 0x1C80  # HJ 212-2017 Appendix A
    assert checker.crc_modbus(vector) == 0x0759
    assert checker.crc_modbus(b"123456789") == 0x4B37  # CRC-16/MODBUS check value
    assert checker.crc_hj212(b"123456789") == 0x2F80
