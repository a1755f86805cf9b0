"""The demo fleet's month, and its report (issue 24): what ``nonsite report`` makes of a month.

The demo (``nonsite demo``) runs its history faster than the clock but stamps its cases with the
wall clock, so a month of demo history all lands on today. Here the month runs in event time
instead, through the service's own parts:

- the demo fleet (``nonsite.simulator``: the same enterprises, loggers, meters and scripted
  incidents, the script started again each week) sends each hour of the month;
- the archive and the service's stages (``nonsite.stages.build_stages``: rules, cases) take
  each hour, the case book's clock at the hour's end;
- the demo's users work the cases as an office would, with seeded delays and choices (the
  enterprise explains most reminders, the monitoring centre verifies, the supervisor
  dispatches, brigades arrive and report, rectifications are ordered, reported, verified and
  struck off (销号), the supervisor closes); the book's deadlines tick each hour (overdue
  explanations escalate, 回头看 are decided from the data);
- each night the fleet is rated (环保码) and the positive list reviewed, a supervisor decides
  the proposals; on the first working morning the month's 双随机 is drawn.

Then ``nonsite report --period YYYY-MM`` writes the PDF and the workbook, and the PDF's pages
are rendered as images (``pdftoppm``, Debian's poppler-utils) into ``--out``.

Usage: python bench/demo_month.py [--month 2026-11] [--enterprises 24] [--out docs/report]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomlkit
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from alerts.positive_list import decide, pending
from alerts.rectification import current
from alerts.schema import cases, rectifications, work_orders
from alerts.stage import AlertStage
from alerts.workflow import OPEN_STATES, Actor, WorkflowError
from ingest.archive import IncomingMessage, RawArchive
from ingest.china_time import CHINA_TZ
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from nonsite.cli import main as nonsite
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.inspection_draws import make_draw
from nonsite.periods import bounds
from nonsite.positive_list_review import review_if_due
from nonsite.risk_rating import rate_if_due
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import demo_incidents, emergency_orders
from nonsite.simulator.traffic import LOST_PREFIX, FleetTraffic
from nonsite.stages import StageMetrics, build_stages
from nonsite.wiring import build_policy, build_registry, build_router
from rules.timebase import DAY, HOUR

MONITOR = Actor("监测中心 王工", "monitor")
SUPERVISOR = Actor("监管科 李科长", "supervisor")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def month_config(month: str, enterprises: int, seed: int, data_dir: Path) -> tuple[Any, list]:
    """The demo fleet with the demo's script started again each week of the month."""
    start, end = (int(t.timestamp()) for t in bounds(month))
    data: dict[str, Any] = demo_fleet(enterprises, seed=seed)
    data["service"] = {"data_dir": str(data_dir)}
    data["alerts"] = {"resolve_on_clear": []}
    config = parse_config(data, "(demo month)", env={})
    incidents = []
    for week in range(start, end, 7 * DAY):
        incidents += demo_incidents(config, week, min(end, week + 7 * DAY))
    for e in data["enterprises"]:
        e.setdefault("orders", []).extend(emergency_orders(incidents).get(e["id"], []))
    return parse_config(data, "(demo month)", env={}), incidents


def working(now: datetime) -> bool:
    local = now.astimezone(CHINA_TZ)
    return local.weekday() < 5 and 9 <= local.hour < 18


class Office:
    """The demo's users at work: each open case's next step after a delay drawn for it (so a
    run repeats), in working hours; some steps are never taken (an enterprise that does not
    answer), and a refused step is left as it was, as a person would."""

    def __init__(self, config: Any, seed: int) -> None:
        self.seed = seed
        self.brigade_of = {e.id: e.brigade for e in config.enterprises}
        self.counts: dict[str, int] = {}
        self.refused: dict[str, int] = {}  # action:code → times

    def rng(self, *key: object) -> random.Random:
        return random.Random(f"{self.seed}:{':'.join(map(str, key))}")

    def work(self, db: Any, book: Any, now: datetime) -> None:
        with db.connect() as conn:
            open_cases = conn.execute(
                select(cases.c.id, cases.c.enterprise_id, cases.c.tier, cases.c.state,
                       cases.c.updated_at, cases.c.rule)
                .where(cases.c.state.in_(OPEN_STATES)).order_by(cases.c.id)
            ).all()  # fmt: skip
            rectifying = conn.execute(
                select(cases.c.id, cases.c.enterprise_id)
                .where(cases.c.id.in_(select(rectifications.c.case_id)))
                .order_by(cases.c.id)
            ).all()
        for cid, enterprise, tier, state, since, rule in open_cases:
            waited = (now - since).total_seconds() / 3600
            r = self.rng(cid, state, since.isoformat())
            self._step(db, book, now, cid, enterprise, tier, state, waited, r, rule)
        for cid, enterprise in rectifying:
            self._rectification(db, book, now, cid, enterprise)

    def _act(self, db: Any, book: Any, cid: int, action: str, actor: Actor, **kw: Any) -> bool:
        try:
            with db.begin() as conn:
                book.act(conn, cid, action, actor, **kw)
        except WorkflowError as err:
            self.refused[f"{action}:{err.code}"] = self.refused.get(f"{action}:{err.code}", 0) + 1
            return False
        self.counts[action] = self.counts.get(action, 0) + 1
        return True

    def _step(self, db: Any, book: Any, now: datetime, cid: int, enterprise: str, tier: str,
              state: str, waited: float, r: random.Random, rule: str) -> None:  # fmt: skip
        brigade = self.brigade_of.get(enterprise)
        enforcer = Actor(f"{brigade} 执法队员", "enforcer", brigade=brigade)
        company = Actor(f"{enterprise} 环保专员", "enterprise", enterprise_id=enterprise)
        if state == "reminded":
            if r.random() < 0.8 and waited >= r.uniform(0.5, 8) and working(now):
                self._act(db, book, cid, "explain", company, note="设备检修期间数据波动，已恢复")
        elif state == "sensed" and working(now) and waited >= r.uniform(1, 6):
            if tier == "warning":
                self._act(db, book, cid, "remind", MONITOR, note="请说明原因")
            else:
                outcome = "false_positive" if r.random() < 0.1 else "confirmed"
                self._act(db, book, cid, "verify", MONITOR, outcome=outcome, note="核实监测数据")
        elif state == "explained" and working(now) and waited >= r.uniform(2, 24):
            outcome = "false_positive" if r.random() < 0.45 else "confirmed"
            self._act(db, book, cid, "verify", MONITOR, outcome=outcome, note="核实企业说明")
        elif state == "verified" and working(now) and waited >= r.uniform(1, 20):
            kind = "on_site" if tier == "alarm" else "non_site_check"
            self._act(db, book, cid, "dispatch", SUPERVISOR, kind=kind, note="请核查")
        elif state == "dispatched" and working(now) and waited >= r.uniform(3, 40):
            self._act(db, book, cid, "arrive", enforcer)
        elif state == "on_site" and waited >= r.uniform(1, 4):
            roll = r.random()
            if roll < 0.3:
                self._act(db, book, cid, "report", enforcer, outcome="violation_confirmed",
                          case_number=f"环罚〔2026〕{cid}号", note="现场检查确认超标排放")  # fmt: skip
            elif roll < 0.55 and rule != "INSPECT":
                if self._act(db, book, cid, "report", enforcer, outcome="rectification_ordered",
                             note="责令限期改正"):  # fmt: skip
                    self._rectify(db, book, cid, "order", enforcer, requirement="更换脱硝催化剂",
                                  working_days=r.randint(5, 10))  # fmt: skip
            else:
                self._act(db, book, cid, "report", enforcer, outcome="not_confirmed",
                          note="现场未发现违法行为")  # fmt: skip
        elif state == "reported" and working(now) and waited >= r.uniform(4, 48):
            self._act(db, book, cid, "close", SUPERVISOR, note="办结")

    def _rectify(self, db: Any, book: Any, cid: int, step: str, actor: Actor, **kw: Any) -> bool:
        try:
            with db.begin() as conn:
                book.rectify(conn, cid, step, actor, **kw)
        except WorkflowError as err:
            key = f"rectify_{step}:{err.code}"
            self.refused[key] = self.refused.get(key, 0) + 1
            return False
        self.counts[f"rectify_{step}"] = self.counts.get(f"rectify_{step}", 0) + 1
        return True

    def _rectification(self, db: Any, book: Any, now: datetime, cid: int, enterprise: str) -> None:
        with db.connect() as conn:
            r = current(conn, cid)
        if r is None or not working(now):
            return
        rng = self.rng("rect", r.id, r.state)
        company = Actor(f"{enterprise} 环保专员", "enterprise", enterprise_id=enterprise)
        if (
            r.state == "ordered"
            and rng.random() < 0.95
            and now >= r.ordered_at + timedelta(days=rng.uniform(1, 5))
        ):
            self._rectify(db, book, cid, "report", company, note="已完成整改，附照片")
        elif (
            r.state == "reported"
            and r.reported_at
            and now >= r.reported_at + timedelta(days=rng.uniform(0.5, 2))
        ):
            self._rectify(db, book, cid, "verify", SUPERVISOR, method="on_site", outcome="passed",
                          note="现场核查整改到位")  # fmt: skip
        elif (
            r.state == "verified"
            and r.verified_at
            and now >= r.verified_at + timedelta(days=rng.uniform(0.2, 2))
        ):
            self._rectify(db, book, cid, "close", SUPERVISOR, note="整改到位，予以销号")


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="nonsite-demo-month-"))
    data_dir = work / "data"
    data_dir.mkdir()
    config, incidents = month_config(args.month, args.enterprises, args.seed, data_dir)
    start, end = (int(t.timestamp()) for t in bounds(args.month))
    db = make_engine(config.database_url())
    migrate(db)
    archive_path = config.service.archive_path
    RawArchive(archive_path, durability="normal").close()
    stages = build_stages(config, db, StageMetrics(CollectorRegistry()), lambda: None)
    (alert_stage,) = [s for s in stages if isinstance(s, AlertStage)]
    book = alert_stage.cases
    clock = Clock(datetime.fromtimestamp(start, UTC))
    book.clock = clock
    processor = MessageProcessor(build_registry(config), build_router(config), build_policy(config))
    archive = RawArchive(archive_path, durability="normal")
    pipeline = IngestPipeline(archive, db, processor, stages)
    traffic = FleetTraffic(config, seed=args.seed, incidents=incidents, since=start)
    office = Office(config, args.seed)
    drawn = False
    messages = 0
    last = end if args.days is None else min(end, start + args.days * DAY)
    for hour in range(start, last, HOUR):
        batch = []
        for minute in range(hour, hour + HOUR, 60):
            for topic, payload in traffic.frames(minute):
                if topic.startswith(LOST_PREFIX):
                    continue
                batch.append(IncomingMessage((minute + 60) * 1_000_000, topic, payload))
        archive.append(batch)
        messages += len(batch)
        clock.now = datetime.fromtimestamp(hour + HOUR, UTC)
        pipeline.drain()
        with db.begin() as conn:
            book.tick(conn)
        local = clock.now.astimezone(CHINA_TZ)
        if local.hour == 2:  # the night's housekeeping: ratings, then the list's review
            rate_if_due(db, config, clock.now)
            review_if_due(db, config, clock.now)
        if not drawn and working(clock.now):
            make_draw(db, config, book, args.month, f"{args.month} 双随机公开种子", SUPERVISOR.name,
                      clock.now)  # fmt: skip
            drawn = True
        if working(clock.now) and local.hour == 10:
            with db.begin() as conn:
                for change in pending(conn):
                    approve = random.Random(f"{args.seed}:list:{change.id}").random() < 0.8
                    decide(conn, change.id, SUPERVISOR, approve,
                           "符合正面清单条件" if approve else "近期有信访投诉，暂缓", clock.now)  # fmt: skip
        office.work(db, book, clock.now)
        if local.hour == 0:
            print(f"{local:%Y-%m-%d}: {messages:,} messages, {time.perf_counter() - began:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    archive.close()
    with db.connect() as conn:
        orders = conn.execute(select(work_orders.c.kind)).all()
    print(f"the month: {messages:,} messages; office steps {office.counts}; refused "
          f"{office.refused}; work orders "
          f"{len(orders)}; {time.perf_counter() - began:.0f} s", file=sys.stderr)  # fmt: skip
    db.dispose()
    toml = data_dir / "nonsite.toml"
    _write_toml(config, data_dir, toml, args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    code = nonsite(["report", "--config", str(toml), "--period", args.month, "--out", str(out)])
    if code != 0:
        return code
    pdf = out / f"report-{args.month}-region.pdf"
    if args.no_images:
        pass
    elif shutil.which("pdftoppm"):
        for old in out.glob(f"report-{args.month}-region-page-*.png"):
            old.unlink()
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "80",
                "-png",
                str(pdf),
                str(out / f"report-{args.month}-region-page"),
            ],
            check=True,
        )
    else:
        print("pdftoppm not found (apt install poppler-utils): no page images", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work)
    else:
        print(f"kept: {work}", file=sys.stderr)
    return 0


def _write_toml(config: Any, data_dir: Path, toml: Path, args: argparse.Namespace) -> None:
    """The month's configuration as a file for ``nonsite report`` (the fleet, the data dir)."""
    data: dict[str, Any] = demo_fleet(args.enterprises, seed=args.seed)
    data["service"] = {"data_dir": str(data_dir)}
    toml.write_text(tomlkit.dumps(data), encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--month", default="2026-11")
    p.add_argument("--enterprises", type=int, default=24)
    p.add_argument("--seed", type=int, default=212)
    p.add_argument("--out", type=Path, default=Path("docs/report"))
    p.add_argument("--days", type=int, help="only the month's first days (a trial run)")
    p.add_argument("--no-images", action="store_true", help="the PDF and workbook only")
    p.add_argument("--keep", action="store_true", help="keep the month's data directory")
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
