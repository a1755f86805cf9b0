"""A scaling model from one run's CPU and bytes per message: cores, processes, nodes,
partitions and disks for a message rate, up to a national fleet.

Everything here is arithmetic on what ``bench.cluster.throughput`` measured on one small
machine (2 cores, loopback, all components sharing them); it is an extrapolation, not a
measurement of a fleet. What it assumes is in ``ASSUMPTIONS`` and in the JSON beside the table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# --- the fleet's traffic ----------------------------------------------------------------------

MINUTE = 60.0


@dataclass(frozen=True)
class Sender:
    """What one outlet's logger or one meter sends, in messages a minute."""

    name: str
    per_minute: float
    detail: str


# docs/loggers.md: real-time data (CN 2011) every RtdInterval, "e.g. 30–60 s" (the standard
# allows 30–3600 s); minute data (CN 2051) commonly every 10 minutes; hour (2061) and day (2031)
# records. The simulator (nonsite/simulator/traffic.py) sends one 2011 a minute, 2051 every
# 10 minutes, 2061 hourly, 2031 daily: the figures below.
OUTLET = Sender(
    "outlet logger",
    1.0 + 1 / 10 + 1 / 60 + 1 / 1440,
    "CN 2011 every 60 s + CN 2051 every 10 min + CN 2061 hourly + CN 2031 daily",
)
OUTLET_FAST = Sender(
    "outlet logger, RtdInterval 30 s",
    2.0 + 1 / 10 + 1 / 60 + 1 / 1440,
    "CN 2011 every 30 s (the standard's shortest) + 2051/2061/2031 as above",
)
# docs/power-telemetry.md fixes no cadence; the simulator's meter takes a sample every minute
# and sends it at once (a gateway uploading history batches them, which makes fewer messages).
METER = Sender("power meter", 1.0, "one JSON reading a minute, sent at once")
METER_5MIN = Sender("power meter, every 5 min", 0.2, "one reading every 5 minutes")

NATIONAL_OUTLETS = 100_000
NATIONAL_METERS = 300_000

ASSUMPTIONS = {
    "utilisation": 0.6,  # a core planned at 60 % busy: headroom for bursts and GC
    "peak_factor": 3.0,  # catch-up after a fleet-wide outage: 1 h of backlog drained in 30 min
    # while live traffic continues (R + 2R)
    "cores_per_node": 8,
    "retention_days": 90,  # [archive] retention_days: the stream's max_age
    "disk_tb": 4.0,  # one data disk
    "disk_fill": 0.7,  # planned fill of a disk
    "partitions_per_worker": 4,  # a lost worker's partitions spread over several others
}


def fleet_rate(outlets: int, meters: int, outlet: Sender = OUTLET, meter: Sender = METER) -> float:
    """Messages a second of a fleet in steady state."""
    return (outlets * outlet.per_minute + meters * meter.per_minute) / MINUTE


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Per message, from the cluster run: CPU µs by component, bytes stored."""

    mosquitto_us: float
    ingest_us: float  # the ingest nodes together
    nats_us: float  # the three NATS nodes together (R3)
    nats_leader_us: float  # the stream leader alone: one stream's writes all go through it
    worker_us: float  # the workers together
    postgres_us: float  # the backends serving the run's database
    stream_disk_bytes: float  # on disk, one replica (JetStream file store, raft log included)
    postgres_bytes: float  # the database's growth
    # What one process drained here, busy or not: an ingest node waits for the stream's
    # acknowledgements, a worker for its commits (0: not measured)
    ingest_node_rate: float = 0.0
    worker_rate: float = 0.0

    @property
    def total_us(self) -> float:
        return self.mosquitto_us + self.ingest_us + self.nats_us + self.worker_us + self.postgres_us


def _procs(rate: float, us: float, measured_rate: float, utilisation: float) -> int:
    """Processes for ``rate``: each a Python process (its work under one GIL, one core at
    most) planned at ``utilisation`` of its CPU and of the rate one process reached here,
    whichever is fewer messages; and one more, so that losing one keeps the capacity."""
    per_process = 1e6 / us if us > 0 else float("inf")
    if measured_rate > 0:
        per_process = min(per_process, measured_rate)
    return math.ceil(rate / (per_process * utilisation)) + 1


def plan(rate: float, costs: Costs, a: dict[str, float] = ASSUMPTIONS) -> dict[str, Any]:
    """What ``rate`` messages/s needs, component by component."""
    u = a["utilisation"]
    node_cores = a["cores_per_node"]

    def cores(us: float) -> float:
        return rate * us / 1e6

    ingest_procs = _procs(rate, costs.ingest_us, costs.ingest_node_rate, u)
    worker_procs = _procs(rate, costs.worker_us, costs.worker_rate, u)
    partitions = 2 ** math.ceil(math.log2(max(1, worker_procs * a["partitions_per_worker"])))
    nats_cores_node = cores(costs.nats_leader_us) / u  # the busiest node: the stream's leader
    pg_cores = cores(costs.postgres_us) / u
    mosquitto_cores = cores(costs.mosquitto_us)
    stream_day = rate * 86400 * costs.stream_disk_bytes  # per replica
    stream_retained = stream_day * a["retention_days"]
    disks_per_nats_node = math.ceil(stream_retained / (a["disk_tb"] * 1e12 * a["disk_fill"]))
    pg_day = rate * 86400 * costs.postgres_bytes
    app_nodes = math.ceil((ingest_procs + worker_procs) / node_cores)  # a core per process
    return {
        "msgs_per_s": round(rate),
        "cpu_cores_busy_total": round(cores(costs.total_us), 2),
        "mosquitto": {
            "cores_busy": round(mosquitto_cores, 2),
            "fits_one_mosquitto": mosquitto_cores <= u,
            "note": "Mosquitto is single-threaded: above one core's share a clustered broker "
            "(or loggers split over brokers, each with its ingest nodes) is needed",
        },
        "ingest": {
            "processes": ingest_procs,
            "cores_busy": round(cores(costs.ingest_us), 2),
            "bound_by": "the rate one node reached here"
            if costs.ingest_node_rate and costs.ingest_node_rate < 1e6 / max(costs.ingest_us, 1e-9)
            else "CPU",
        },
        "nats": {
            "nodes": 3,
            "leader_cores": round(nats_cores_node, 2),
            "all_nodes_cores_busy": round(cores(costs.nats_us), 2),
            "write_mb_per_s_per_node": round(rate * costs.stream_disk_bytes / 1e6, 2),
            "stream_tb_per_node": round(stream_retained / 1e12, 2),
            "disks_per_node": disks_per_nats_node,
            "note": "one stream: every write goes through its leader; past one node's cores "
            "the stream would have to be split (not supported by this version)",
        },
        "workers": {
            "processes": worker_procs,
            "cores_busy": round(cores(costs.worker_us), 2),
            "bound_by": "the rate one worker reached here"
            if costs.worker_rate and costs.worker_rate < 1e6 / max(costs.worker_us, 1e-9)
            else "CPU",
            "partitions": max(16, partitions),
        },
        "postgresql": {
            "cores": round(pg_cores, 2),
            "growth_gb_per_day": round(pg_day / 1e9, 2),
        },
        "app_nodes": app_nodes,
        "app_node_cores": node_cores,
    }


def scenarios(costs: Costs, a: dict[str, float] = ASSUMPTIONS) -> list[dict[str, Any]]:
    national = fleet_rate(NATIONAL_OUTLETS, NATIONAL_METERS)
    national_fast = fleet_rate(NATIONAL_OUTLETS, NATIONAL_METERS, OUTLET_FAST, METER)
    national_slow = fleet_rate(NATIONAL_OUTLETS, NATIONAL_METERS, OUTLET, METER_5MIN)
    rows = [
        ("a province (5,000 outlets, 15,000 meters), steady", fleet_rate(5_000, 15_000)),
        ("national, meters every 5 min, steady", national_slow),
        ("national, steady", national),
        ("national, RtdInterval 30 s, steady", national_fast),
        (
            f"national, peak (×{a['peak_factor']:g}: catch-up after an outage)",
            national * a["peak_factor"],
        ),
    ]
    return [{"scenario": name, **plan(rate, costs, a)} for name, rate in rows]


def describe() -> dict[str, Any]:
    return {
        "senders": [asdict(s) for s in (OUTLET, OUTLET_FAST, METER, METER_5MIN)],
        "national": {"outlets": NATIONAL_OUTLETS, "meters": NATIONAL_METERS},
        "assumptions": ASSUMPTIONS,
        "caveat": "extrapolated from one run on a shared 2-core machine where every component "
        "(broker, 3 NATS nodes, ingest nodes, workers, PostgreSQL, the load generator) shared "
        "the same cores over loopback: CPU per message is measured, the rest is arithmetic; "
        "network, disk latency, NATS's per-stream limits and PostgreSQL's behaviour at scale "
        "are not measured",
    }


__all__ = ["Costs", "describe", "fleet_rate", "plan", "scenarios"]
