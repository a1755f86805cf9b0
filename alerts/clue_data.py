"""The monitoring data around a clue's time (alerts.clues): an enterprise's outlets' hour
values, its meters' hours and the rules' findings, as the rules kept them (rules.store).

Recorded with the clue when it comes in, so that what the monitoring centre saw then is what
the case shows later, whatever the rules keep or drop afterwards. Bounded: a window of a few
hours of one enterprise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from rules.store import findings, hour_values, meter_hours
from rules.timebase import iso

MAX_FINDINGS = 200


def surroundings(
    conn: Connection, enterprise_id: str, since: datetime, until: datetime
) -> dict[str, Any]:
    """Per outlet and factor its hours in [since, until); per meter its hours; the findings
    whose window overlaps it (at most ``MAX_FINDINGS``, the latest)."""
    lo, hi = int(since.timestamp()), int(until.timestamp())
    lo_hour = lo - lo % 3600  # the hour the window begins in
    hv = hour_values.c
    outlets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in conn.execute(
        select(hv.outlet_id, hv.factor, hv.start, hv.value, hv.valid, hv.flag, hv.converted)
        .where(hv.enterprise_id == enterprise_id, hv.start >= lo_hour, hv.start < hi)
        .order_by(hv.outlet_id, hv.factor, hv.start)
    ):
        outlets.setdefault(r.outlet_id, {}).setdefault(r.factor, []).append(
            {
                "start": iso(int(r.start)),
                "value": r.value,
                "valid": bool(r.valid),
                "flag": r.flag,
                "converted": r.converted,
            }
        )
    mh = meter_hours.c
    meters: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(
        select(mh.meter_id, mh.start, mh.energy_kwh, mh.on_s, mh.off_s, mh.mean_kw, mh.max_kw)
        .where(mh.enterprise_id == enterprise_id, mh.start >= lo_hour, mh.start < hi)
        .order_by(mh.meter_id, mh.start)
    ):
        meters.setdefault(r.meter_id, []).append(
            {
                "start": iso(int(r.start)),
                "energy_kwh": r.energy_kwh,
                "on_s": r.on_s,
                "off_s": r.off_s,
                "mean_kw": r.mean_kw,
                "max_kw": r.max_kw,
            }
        )
    f = findings.c
    found = [
        {
            "id": r.id,
            "rule": r.rule,
            "state": r.state,
            "tier": r.tier,
            "source_id": r.source_id,
            "factor": r.factor,
            "window_start": _utc(r.window_start),
            "window_end": _utc(r.window_end),
            "value": r.value,
            "limit": r.limit_value,
            "unit": r.unit,
        }
        for r in conn.execute(
            select(findings)
            .where(
                f.enterprise_id == enterprise_id,
                f.window_start < until,
                f.window_end > since,
            )
            .order_by(f.window_start.desc())
            .limit(MAX_FINDINGS)
        )
    ]
    return {
        "since": since.astimezone(UTC).isoformat(),
        "until": until.astimezone(UTC).isoformat(),
        "outlets": outlets,
        "meters": meters,
        "findings": found[::-1],
    }


def _utc(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
