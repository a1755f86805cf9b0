"""Soak: the chaos test (tests/nonsite/cluster/test_chaos.py) made longer and repeated.

The same cluster as the chaos test, from its harness (``tests/nonsite/cluster/harness.py``):
Mosquitto, 3 NATS nodes (one stream, R3), 2 ingest nodes, 3 workers and PostgreSQL (a database
of its own, dropped afterwards) as real processes, with the chaos test's 200 enterprises, rules
and two webhook channels to a receiver that takes 50 ms per request. Traffic runs in rounds:
each round publishes a block of event hours (every enterprise's 10-minute packet per slot, SO2
over the limit in short episodes, then a packet that closes the block) at a paced rate, and
kills parts at random moments during it: an ingest node, a worker, the stream's leader
(never PostgreSQL, which is shared), each SIGKILLed and started again after a random while.
After each round, once the cluster has settled, the chaos test's invariants, over everything
published so far:

1. every published frame is in the stream exactly once;
2. the findings equal ``nonsite replay`` over the same frames (the windows the data closed);
3. one case per problem: each SO2 episode one A3 case, each hour's fire applied once;
4. every notification delivered; the keys received are the keys queued, a send cut off by a
   kill repeated at most once per kill and channel.

Rounds go on until ``--minutes`` have passed; the first failed check stops the soak. Prints a
summary and writes bench/results/cluster_soak.json (with each role's log tail on failure).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

from alerts.schema import cases, outbox
from bench.cluster.parts import (
    StreamClient,
    create_database,
    drop_database,
    load,
    machine,
    url_for,
    wait_until,
)
from ingest.archive import message_digest
from ingest.jetstream.stream import StreamSettings
from nonsite.db import make_engine
from tests.alerts.channels.receiver import Receiver
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    PW,
    LocalCluster,
    Role,
    checkpoints,
    findings_json,
    replay_json,
)
from tests.nonsite.cluster.test_chaos import (
    ABSENCE,
    CHANNELS,
    ENTERPRISES,
    GRACE,
    config_lines,
    exceeds,
    mn,
)
from tests.service_process import gas_packet

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cluster_soak.json"
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/test"
H0 = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
STREAM = StreamSettings(partitions=12)  # the harness's defaults, the chaos test's partitions
SETTLE_S = 300.0
KINDS = ("ingest", "worker", "nats-leader")
BACK_AFTER_S = {"ingest": (2.0, 8.0), "worker": (3.0, 20.0), "nats-leader": (3.0, 8.0)}

Frame = tuple[str, bytes]


# --- traffic ------------------------------------------------------------------------------------


def over(i: int, h: int, local: int, hours: int) -> bool:
    """Enterprise i's SO2 is over the limit in global hour h: the chaos test's episodes, but
    never in a block's first or last hour, so that no episode touches the hour a block's
    closing packet leaves nearly empty (each round's cases are then the block's own)."""
    return exceeds(i, h) and 0 < local < hours - 1


def block(first_hour: int, hours: int) -> tuple[list[list[Frame]], datetime]:
    """One round's frames, a batch per 10 minutes of event time, and the moment the closing
    batch is stamped (every window of the block is closed by it)."""
    out = []
    for local in range(hours):
        h = first_hour + local
        for k in range(6):
            at = H0 + timedelta(hours=h, minutes=10 * k)
            out.append(
                [
                    (
                        f"hj212/{mn(i)}",
                        gas_packet(
                            mn(i), PW, at, 420.0 if over(i, h, local, hours) else 40 + i % 7
                        ),
                    )
                    for i in range(ENTERPRISES)
                ]
            )
    closing = H0 + timedelta(hours=first_hour + hours, minutes=30)
    out.append(
        [(f"hj212/{mn(i)}", gas_packet(mn(i), PW, closing, 40.0)) for i in range(ENTERPRISES)]
    )
    return out, closing


def episodes(first_hour: int, hours: int) -> Counter[str]:
    """A3 episodes (runs of hours over the limit) per enterprise in a block."""
    out: Counter[str] = Counter()
    for i in range(ENTERPRISES):
        for local in range(hours):
            h = first_hour + local
            if over(i, h, local, hours) and not (local > 0 and over(i, h - 1, local - 1, hours)):
                out[f"E{i:03d}"] += 1
    return out


# --- kills ------------------------------------------------------------------------------------


@dataclass
class Kill:
    kind: str
    at_s: float  # into the round's traffic
    back_after_s: float
    victim: str = ""
    done_at_s: float | None = None
    error: str | None = None


@dataclass
class Soak:
    cluster: LocalCluster
    ingest: list[Role]
    workers: list[Role]
    rng: random.Random
    restarts: list[threading.Thread] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def plan(self, round_no: int, round_s: float) -> list[Kill]:
        """One kill of each kind in turn, and a second of another kind in half the rounds."""
        kinds = [KINDS[round_no % len(KINDS)]]
        if self.rng.random() < 0.5:
            kinds.append(self.rng.choice([k for k in KINDS if k != kinds[0]]))
        kills = [
            Kill(kind, self.rng.uniform(0.1, 0.75) * round_s, self.rng.uniform(*BACK_AFTER_S[kind]))
            for kind in kinds
        ]
        return sorted(kills, key=lambda k: k.at_s)

    def later(self, delay_s: float, action: Callable[[], object], what: str) -> None:
        def run() -> None:
            time.sleep(delay_s)
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - reported with the round
                self.errors.append(f"restarting {what}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.restarts.append(thread)

    def execute(self, kill: Kill, started: float) -> None:
        kill.done_at_s = round(time.monotonic() - started, 1)
        if kill.kind in ("ingest", "worker"):
            roles = self.ingest if kill.kind == "ingest" else self.workers
            alive = [r for r in roles if r.proc is not None and r.proc.poll() is None]
            if not alive:
                kill.error = f"no {kill.kind} running to kill"
                return
            role = self.rng.choice(alive)
            kill.victim = role.config.stem
            role.kill()
            self.later(kill.back_after_s, lambda: role.start(wait_ready=False), kill.victim)
            return
        nats = self.cluster.nats
        leader = None
        for _ in range(50):  # an election in progress names no leader for a moment
            leader = nats.stream_leader(STREAM.name)
            if leader is not None:
                break
            time.sleep(0.1)
        if leader is None:
            kill.error = "no stream leader to kill"
            return
        kill.victim = f"nats-{nats.node_name(leader)} (stream leader)"
        nats.kill(leader)
        self.later(kill.back_after_s, lambda: nats.restart(leader, timeout=60), kill.victim)

    def publish(self, batches: list[list[Frame]], round_s: float, kills: list[Kill]) -> float:
        """The batches evenly over ``round_s``, the kills at their moments; seconds taken."""
        host, port = self.cluster.mosquitto.host, self.cluster.mosquitto.port
        publisher = Publisher(host, port, f"soak-publisher-{os.getpid()}")
        pending = list(kills)
        every = round_s / len(batches)
        started = time.monotonic()
        try:
            for n, batch in enumerate(batches):
                while time.monotonic() < started + n * every:
                    if pending and time.monotonic() - started >= pending[0].at_s:
                        self.execute(pending.pop(0), started)
                    time.sleep(0.01)
                while pending and time.monotonic() - started >= pending[0].at_s:
                    self.execute(pending.pop(0), started)
                publisher.publish_all(batch, timeout=120)
            for kill in pending:  # a kill planned after the last batch went out
                self.execute(kill, started)
        finally:
            publisher.close()
        return time.monotonic() - started

    def join_restarts(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.restarts:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.restarts = [t for t in self.restarts if t.is_alive()]
        if self.restarts:
            self.errors.append(f"{len(self.restarts)} restarts still running after {timeout} s")

    def dead(self) -> list[str]:
        """Roles not running (none should be once the restarts are done)."""
        return [
            r.config.stem
            for r in self.ingest + self.workers
            if r.proc is None or r.proc.poll() is not None
        ]


# --- checks ------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Everything published and checked so far."""

    frames: list[Frame] = field(default_factory=list)
    digests: Counter[str] = field(default_factory=Counter)  # the stream's members', read so far
    read_until: int = 0  # the stream's sequence (of a pack) read up to
    episodes: Counter[str] = field(default_factory=Counter)
    kills: int = 0


def settled(db: sa.Engine, stream: StreamClient) -> bool:
    """Every partition's checkpoint (a position) at its last message's position."""
    lasts = stream.last_positions(STREAM)
    done = checkpoints(db)
    return all(done.get(f"ingest.p{p}", 0) >= last for p, last in lasts.items())


def notified(db: sa.Engine) -> bool:
    with db.connect() as conn:
        pending = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state == "pending")
        ).scalar_one()
    return int(pending) == 0


def judged(rows: list[dict[str, Any]], closed_by: datetime | None) -> set[tuple[Any, ...]]:
    """The chaos test's comparison: the data rules' findings, with ``closed_by`` only those of
    windows the data closed (the replay judges every window at the end of its input)."""
    return {
        (f["id"], f["state"], f["tier"])
        for f in rows
        if f["rule"] not in ABSENCE
        and (closed_by is None or datetime.fromisoformat(str(f["window_end"])) + GRACE <= closed_by)
    }


def check(
    ledger: Ledger,
    db: sa.Engine,
    stream: StreamClient,
    receiver: Receiver,
    config: Path,
    workdir: Path,
    closed_by: datetime,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # 1. Every frame in the stream exactly once (the stream read on from where it was left,
    # by stream sequence; the digests are the packs' members').
    last = int(stream.state(STREAM.name).last_seq or 0)
    ledger.digests.update(stream.digests(STREAM.name, ledger.read_until, last))
    ledger.read_until = last
    published = Counter(message_digest(t, p).hex() for t, p in ledger.frames)
    doubled = sum(1 for n in ledger.digests.values() if n > 1)
    missing = len(published.keys() - ledger.digests.keys())
    extra = len(ledger.digests.keys() - published.keys())
    out["stream"] = {
        "messages": sum(ledger.digests.values()),
        "published": len(ledger.frames),
        "doubled": doubled,
        "missing": missing,
        "unexpected": extra,
        "ok": doubled == 0 and missing == 0 and extra == 0,
    }
    # 2. The findings equal the replay's.
    frames_file = workdir / "frames.txt"
    frames_file.write_bytes(b"\n".join(p.rstrip(b"\r\n") for _, p in ledger.frames) + b"\n")
    replayed = replay_json(config, frames_file)
    expected = judged(replayed, closed_by)
    stored = judged(findings_json(config), None)
    out["findings"] = {
        "expected": len(expected),
        "stored_not_replayed": sorted(map(list, stored - expected))[:6],
        "replayed_not_stored": sorted(map(list, expected - stored))[:6],
        "ok": stored == expected,
    }
    # 3. One case per problem.
    with db.connect() as conn:
        a3 = conn.execute(
            sa.select(cases.c.enterprise_id, cases.c.count).where(cases.c.rule == "A3")
        ).all()
        queued = conn.execute(sa.select(outbox.c.key, outbox.c.state)).all()
    per_enterprise = Counter(str(e) for e, _ in a3)
    fires = sum(1 for f in expected if str(f[0]).startswith("A3:") and f[1] == "fire")
    applied = sum(int(n) for _, n in a3)
    out["cases"] = {
        "a3_cases": len(a3),
        "episodes": sum(ledger.episodes.values()),
        "fires": fires,
        "applied": applied,
        "enterprises_off": sorted(
            e
            for e in per_enterprise.keys() | ledger.episodes.keys()
            if per_enterprise[e] != ledger.episodes[e]
        )[:10],
        "ok": per_enterprise == ledger.episodes and applied == fires,
    }
    # 4. Every notification delivered, the keys received those queued.
    keys = [r.header("Idempotency-Key") for r in receiver.requests]
    states = Counter(str(s) for _, s in queued)
    resent = len(keys) - len(set(keys))
    out["notifications"] = {
        "queued": len(queued),
        "states": dict(states),
        "deliveries": len(keys),
        "resent": resent,
        "resent_allowed": ledger.kills * CHANNELS,
        "ok": set(states) <= {"delivered"}
        and set(keys) == {str(k) for k, _ in queued}
        and resent <= ledger.kills * CHANNELS,
    }
    out["ok"] = all(v["ok"] for v in out.values() if isinstance(v, dict))
    return out


# --- the soak ------------------------------------------------------------------------------------


def run_round(
    soak: Soak,
    ledger: Ledger,
    n: int,
    args: argparse.Namespace,
    db: sa.Engine,
    stream: StreamClient,
    receiver: Receiver,
    workdir: Path,
) -> dict[str, Any]:
    per_round = max(2, round(args.rate * args.round_s / ENTERPRISES / 6))
    first_hour = n * (per_round + 1)
    batches, closed_by = block(first_hour, per_round)
    kills = soak.plan(n, args.round_s)
    before = load()
    published_s = soak.publish(batches, args.round_s, kills)
    ledger.frames += [f for b in batches for f in b]
    ledger.episodes += episodes(first_hour, per_round)
    ledger.kills += sum(1 for k in kills if k.victim)
    began = time.monotonic()
    soak.join_restarts()
    result: dict[str, Any] = {
        "round": n + 1,
        "event_hours": [first_hour, first_hour + per_round],
        "frames": sum(len(b) for b in batches),
        "published_s": round(published_s, 1),
        "kills": [vars(k) for k in kills],
        "load_before": before,
    }
    try:
        total = len(ledger.frames)
        wait_until(
            lambda: stream.count(STREAM.name) >= total, SETTLE_S, "every frame in the stream"
        )
        wait_until(
            lambda: settled(db, stream), SETTLE_S, "every partition's checkpoint at its end", 0.25
        )
        wait_until(lambda: notified(db), SETTLE_S, "every notification sent", 0.25)
    except TimeoutError as exc:
        result["settled"] = False
        result["error"] = str(exc)
        result["ok"] = False
        return result
    result["settled"] = True
    result["settle_s"] = round(time.monotonic() - began, 1)
    if dead := soak.dead():
        result["not_running"] = dead
    result["checks"] = check(
        ledger, db, stream, receiver, soak.workers[0].config, workdir, closed_by
    )
    result["load_after"] = load()
    result["restart_errors"], soak.errors = soak.errors, []
    result["ok"] = (
        result["checks"]["ok"] and not result.get("not_running") and not result["restart_errors"]
    )
    return result


def line(r: dict[str, Any]) -> str:
    kills = ", ".join(
        f"{k['victim'] or k['kind']} at {k['done_at_s']} s (back after {k['back_after_s']:.0f} s)"
        for k in r["kills"]
    )
    if not r.get("settled"):
        return f"round {r['round']}: NOT SETTLED: {r.get('error')}; kills {kills}"
    c = r["checks"]
    return (
        f"round {r['round']}: {r['frames']:,} frames in {r['published_s']} s, settled "
        f"{r['settle_s']} s later; kills {kills}; stream {c['stream']['messages']:,} "
        f"(doubled {c['stream']['doubled']}, missing {c['stream']['missing']}), findings "
        f"{'=' if c['findings']['ok'] else '≠'} replay ({c['findings']['expected']}), "
        f"A3 cases {c['cases']['a3_cases']}/{c['cases']['episodes']} episodes, notifications "
        f"{c['notifications']['deliveries']} ({c['notifications']['resent']} resent): "
        f"{'ok' if r['ok'] else 'FAILED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="rounds start until then")
    parser.add_argument("--round-s", type=float, default=45.0, help="each round's traffic")
    parser.add_argument("--rate", type=float, default=500.0, help="frames/s while publishing")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NONSITE_TEST_PG_URL", DEFAULT_PG),
        help="a PostgreSQL server (a fresh database is created on it and dropped)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="work in this new directory and keep it")
    args = parser.parse_args()
    base = url_for(args.database_url, "test")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    began = time.monotonic()
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(base),
        "load_at_start": load(),
        "settings": {
            "minutes": args.minutes,
            "round_s": args.round_s,
            "rate": args.rate,
            "seed": seed,
            "enterprises": ENTERPRISES,
            "partitions": STREAM.partitions,
            "roles": "2 ingest nodes, 3 workers, 3 NATS nodes (R3), Mosquitto, PostgreSQL",
        },
        "rounds": [],
    }
    database = f"nonsite_soak_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver:
        workdir = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            workdir = args.keep
        receiver.respond(200, delay_s=0.05)  # the chaos test's: kills land mid-send
        pg_url = create_database(base, database)
        cluster = LocalCluster(
            workdir, pg_url, config_lines(receiver.url), partitions=STREAM.partitions
        ).start()
        stream: StreamClient | None = None
        db = make_engine(pg_url)
        try:
            soak = Soak(
                cluster,
                [cluster.role("ingest", f"ingest-{n}") for n in "ab"],
                [cluster.role("worker", f"worker-{n}") for n in "abc"],
                random.Random(seed),
            )
            stream = StreamClient(cluster.nats.urls, cluster.nats.login("web"))
            ledger = Ledger()
            n = 0
            while n == 0 or time.monotonic() - began < args.minutes * 60:
                r = run_round(soak, ledger, n, args, db, stream, receiver, workdir)
                result["rounds"].append(r)
                print(line(r), flush=True)
                n += 1
                if not r["ok"]:
                    result["logs"] = cluster.logs(4000)
                    break
        finally:
            if stream is not None:
                stream.close()
            db.dispose()
            cluster.stop()
            drop_database(base, database)
    rounds = result["rounds"]
    kills = [k for r in rounds for k in r["kills"] if k["victim"]]
    result["summary"] = {
        "rounds": len(rounds),
        "passed": sum(1 for r in rounds if r["ok"]),
        "frames": sum(r["frames"] for r in rounds),
        "kills": dict(Counter(k["kind"] for k in kills)),
        "ok": bool(rounds) and all(r["ok"] for r in rounds),
        "run_s": round(time.monotonic() - began),
    }
    result["load_at_end"] = load()
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    s = result["summary"]
    print(
        f"soak: {s['passed']}/{s['rounds']} rounds passed, {s['frames']:,} frames, kills "
        f"{s['kills']}, {s['run_s']} s (seed {seed}); written to {args.output}"
    )
    if not s["ok"]:
        if "logs" in result:
            print(result["logs"])
        sys.exit(1)


if __name__ == "__main__":
    main()
