"""An enterprise's status at a glance, from its open cases and its metered production (the
retained MQTT status and the dashboard's fleet view): 报警 over 离线 over 预警 over 停产 over
正常."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from alerts.noise import OFFLINE_RULE
from alerts.schema import cases
from rules.store import production

STATUS_NAMES = {
    "alarm": "报警",
    "offline": "离线",
    "warning": "预警",
    "stopped": "停产",
    "normal": "正常",
}


def enterprise_status(conn: Connection, enterprise_id: str) -> dict[str, Any]:
    rows = conn.execute(
        select(cases.c.tier, cases.c.rule, func.count())
        .where(cases.c.enterprise_id == enterprise_id, cases.c.open_key.is_not(None))
        .group_by(cases.c.tier, cases.c.rule)
    ).all()
    alarms = sum(n for tier, _, n in rows if tier == "alarm")
    warnings = sum(n for tier, _, n in rows if tier == "warning")
    offline = any(rule == OFFLINE_RULE for _, rule, _ in rows)
    producing = conn.execute(
        select(production.c.producing).where(production.c.enterprise_id == enterprise_id)
    ).scalar()
    stopped = producing is not None and not producing
    status = (
        "alarm"
        if alarms
        else "offline"
        if offline
        else "warning"
        if warnings
        else "stopped"
        if stopped
        else "normal"
    )
    return {
        "enterprise_id": enterprise_id,
        "status": status,
        "status_zh": STATUS_NAMES[status],
        "open_alarms": alarms,
        "open_warnings": warnings,
        "at": datetime.now(UTC).isoformat(),
    }
