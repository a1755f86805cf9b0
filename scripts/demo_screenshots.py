"""Screenshots of the dashboard during `nonsite demo`, for the README.

Runs the demo as the README starts it (200 enterprises, a day of history at 1200x, then
live), waits until history has caught up with the clock and a little more (by then every
scripted incident has its case), then logs in as the monitoring centre in Debian's chromium
and saves the fleet overview, the alert queue and the hourly exceedance's case page at
1400 px, and the case page and the fleet on a 390 px phone, to docs/screenshots/demo-*.png.

    .venv/bin/python scripts/demo_screenshots.py [--settle 20]
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
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to wait once live")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        log = Path(data_dir) / "demo.log"
        with log.open("w") as out:
            demo = subprocess.Popen(  # noqa: S603 - our own CLI
                [
                    *(sys.executable, "-m", "nonsite", "demo", "--data-dir", data_dir),
                    *("--port", str(port)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_live(log)
            time.sleep(args.settle)
            case_id = _case_id(Path(data_dir) / "nonsite.db", "A3")
            _shoot(f"http://127.0.0.1:{port}", case_id)
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
    return 0


def _wait_until_live(log: Path) -> None:
    """Until the demo's status line says it follows the clock (实时): history is sent."""
    while "实时" not in log.read_text(errors="replace"):
        time.sleep(2)


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
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{url}/cases/{case_id}")
        phone.wait_for_selector("body[data-ready='1']")
        phone.wait_for_timeout(1500)
        phone.screenshot(path=str(OUT / "demo-case-phone.png"), full_page=True)
        phone.goto(f"{url}/")
        phone.wait_for_selector("body[data-ready='1']")
        phone.screenshot(path=str(OUT / "demo-fleet-phone.png"))
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
