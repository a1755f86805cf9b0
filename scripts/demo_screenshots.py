"""Screenshots of the dashboard during `nonsite demo`, for the README.

Runs the demo (200 enterprises, a day of history at --speed), waits until the simulated
clock has passed the given China-time hour of the first day (by then the morning's scripted
incidents have been judged), then logs in as the monitoring centre in Debian's chromium and
saves the fleet overview, the alert queue and the hourly exceedance's case page to
docs/screenshots/demo-*.png.

    .venv/bin/python scripts/demo_screenshots.py [--speed 240] [--until-hour 13]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import sync_playwright

from nonsite.demo import DEMO_PASSWORD
from nonsite.embedded_broker import free_port

OUT = Path(__file__).parents[1] / "docs" / "screenshots"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=240.0)
    ap.add_argument("--until-hour", type=int, default=13, help="China time on the first day")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        log = Path(data_dir) / "demo.log"
        with log.open("w") as out:
            demo = subprocess.Popen(  # noqa: S603 - our own CLI
                [
                    *(sys.executable, "-m", "nonsite", "demo", "--data-dir", data_dir),
                    *("--speed", str(args.speed), "--port", str(port)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_hour(log, args.until_hour)
            case_id = _case_id(Path(data_dir) / "nonsite.db", "A3")
            _shoot(f"http://127.0.0.1:{port}", case_id)
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
    return 0


def _wait_for_hour(log: Path, hour: int) -> None:
    """Until the demo's status line shows the first day's ``hour``:00 (China time) passed."""
    first_day: str | None = None
    while True:
        time.sleep(2)
        stamps = re.findall(r"模拟时间 (\d\d-\d\d) (\d\d):\d\d", log.read_text(errors="replace"))
        if not stamps:
            continue
        first_day = first_day or stamps[0][0]
        day, at = stamps[-1]
        if day != first_day or int(at) >= hour:
            return


def _case_id(db_path: Path, rule: str) -> int:
    db = sa.create_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        found = conn.execute(
            sa.text(
                "select id from cases where rule = :r order by tier = 'alarm' desc, id limit 1"
            ),
            {"r": rule},
        ).scalar_one()
    db.dispose()
    return int(found)


def _shoot(url: str, case_id: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(
            viewport={"width": 1400, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        page.goto(f"{url}/login")
        page.fill("#username", "monitor")
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(re.compile(r"^(?!.*/login)"))
        page.wait_for_selector("body[data-ready='1']")
        page.screenshot(path=str(OUT / "demo-fleet.png"))
        page.click("#nav-cases")
        page.wait_for_selector("#cases tbody tr")
        page.screenshot(path=str(OUT / "demo-queue.png"))
        page.goto(f"{url}/cases/{case_id}")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_timeout(1500)  # the chart draws after its data arrives
        page.screenshot(path=str(OUT / "demo-case.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
