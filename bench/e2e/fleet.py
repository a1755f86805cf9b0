"""The configurations the end-to-end benchmark runs ``nonsite serve`` with.

- ``bench_config``: the demo's fleet (its enterprises, brigades and scripted incidents), with
  an hourly exceedance on every tenth outlet so that cases are opened and updated all along,
  probe enterprises for the latency run, and a webhook to the monitoring centre that is told
  of every case change (the outbox's work).
- ``scaled_fleet``: the same kinds of enterprise, as many as it takes to reach a number of
  outlet×factor keys and meters, for the memory run.

Written as TOML with tomlkit, since ``nonsite serve`` reads its configuration from a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import FOREVER, Incident, scripted_config

PROBE_FACTORS = ["a21026", "a19001", "a00000"]  # SO2, and the O2 and flow it is judged with


def probe_mn(i: int) -> str:
    return f"33019999{i:04d}A890000000000"


def probe_enterprises(n: int) -> list[dict[str, Any]]:
    """One boiler outlet each: every probe opens a case of its own."""
    return [
        {
            "id": f"P{i:04d}",
            "name": f"探针企业{i:04d}",
            "industry": "heating",
            "brigade": "B01",
            "outlets": [
                {
                    "id": "DA001",
                    "kind": "gas",
                    "mn": probe_mn(i),
                    "pw": "123456",
                    "preset": "industrial_boiler_coal",
                    "factors": PROBE_FACTORS,
                }
            ],
        }
        for i in range(n)
    ]


def service_sections(
    data_dir: Path, broker_url: str, http_port: int, webhook: str, database_url: str
) -> dict[str, Any]:
    return {
        "service": {"data_dir": str(data_dir), "http_listen": f"127.0.0.1:{http_port}"},
        "mqtt": {"url": broker_url, "client_id": "bench-serve"},
        "database": {"url": database_url},
        "alerts": {
            "channels": [{"name": "centre", "kind": "webhook", "url": webhook}],
            "every_change": ["centre"],
        },
    }


def bench_config(
    enterprises: int, probes: int, start: int, end: int, sections: dict[str, Any]
) -> tuple[dict[str, Any], Config, list[Incident], Config]:
    """(the service's configuration as data, the fleet's own configuration and incidents
    (what the traffic is generated from), the probes' own configuration)."""
    data: dict[str, Any] = demo_fleet(enterprises) | sections
    config, incidents = scripted_config(data, start, end, "(bench)")
    outlets = [(e.id, o.id) for e in config.enterprises for o in e.outlets]
    incidents += [
        Incident(
            name="小时超标 (SO2)",
            kind="exceed",
            enterprise_id=ent,
            source_id=outlet,
            start=start,
            end=FOREVER,
            factor="a21026",
        )
        for n, (ent, outlet) in enumerate(outlets)
        if n % 10 == 5 and ent not in {i.enterprise_id for i in incidents}
    ]
    data["enterprises"] = data["enterprises"] + probe_enterprises(probes)
    parse_config(data, "(bench)", env={})  # the service's, checked here
    probe_only = parse_config(
        {"brigades": data["brigades"], "enterprises": probe_enterprises(probes)}, "(probes)", env={}
    )
    return data, config, incidents, probe_only


def scaled_fleet(keys: int, meters: int) -> dict[str, Any]:
    """Demo-fleet enterprises until ``keys`` outlet×factor keys, with factories dropped (or
    kept) so that there are exactly ``meters`` meters (two per factory)."""
    n = 100
    while True:
        fleet = demo_fleet(n)
        have = sum(len(o["factors"]) for e in fleet["enterprises"] for o in e["outlets"])
        if have >= keys:
            break
        n = int(n * max(1.05, keys / max(have, 1)))
    kept: list[dict[str, Any]] = []
    metered = 0
    for e in fleet["enterprises"]:
        if e["meters"]:
            if metered >= meters:
                continue
            metered += len(e["meters"])
        kept.append(e)
    extra = 0
    while metered < meters:  # more factories than the outlets' share of the fleet brings
        template = next(e for e in fleet["enterprises"] if e["meters"])
        extra += 1
        ent_id = f"X{extra:05d}"
        kept.append(
            template
            | {
                "id": ent_id,
                "meters": [
                    m
                    | {
                        "id": m["id"].replace(template["id"], ent_id),
                        **(
                            {"serves": [s.replace(template["id"], ent_id) for s in m["serves"]]}
                            if m.get("serves")
                            else {}
                        ),
                    }
                    for m in template["meters"]
                ],
            }
        )
        metered += len(template["meters"])
    return {"brigades": fleet["brigades"], "enterprises": kept}


def count_keys(config: Config) -> tuple[int, int]:
    """(outlet×factor keys, meters)."""
    keys = sum(len(o.factors) for e in config.enterprises for o in e.outlets)
    return keys, sum(len(e.meters) for e in config.enterprises)


def write_toml(data: dict[str, Any], path: Path) -> Path:
    path.write_text(tomlkit.dumps(_plain(data)))
    return path


def _plain(value: Any) -> Any:
    """TOML has no null: drop the Nones that a dump leaves."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
