"""An enterprise's status at a glance, from its open cases, its metered production and whether
its loggers have ever reported (the retained MQTT status and the dashboard's fleet view):
报警 over 离线 over 预警 over 未上线 over 停产 over 正常.

未上线 (never reported) is an enterprise none of whose loggers and meters has ever sent
anything: without it a configured but not yet connected site read 正常, and B8 (offline) cannot
say so, as it fires only for a logger that has been heard before. Whether a source has been
heard is the caller's to say (the web reads the raw archive, nonsite/web/reported.py); a caller
that cannot tell passes nothing and gets the status from cases and production alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from alerts.noise import OFFLINE_RULE
from alerts.schema import cases
from rules.store import producing

STATUS_NAMES = {
    "alarm": "报警",
    "offline": "离线",
    "warning": "预警",
    "never_reported": "未上线",
    "stopped": "停产",
    "normal": "正常",
}
# The fleet's reading order, what is red now first: 报警, 预警 (the enterprise must answer),
# 离线, 未上线, 停产, 正常. Not the precedence above: an enterprise both offline and warned is
# 离线, but among enterprises a warning needs someone sooner than a silent logger.
FLEET_ORDER = ("alarm", "warning", "offline", "never_reported", "stopped", "normal")


def enterprise_status(
    conn: Connection, enterprise_id: str, *, never_reported: bool = False
) -> dict[str, Any]:
    """``never_reported``: none of the enterprise's sources has ever sent anything."""
    rows = conn.execute(
        select(cases.c.tier, cases.c.rule, func.count())
        .where(cases.c.enterprise_id == enterprise_id, cases.c.open_key.is_not(None))
        .group_by(cases.c.tier, cases.c.rule)
    ).all()
    alarms = sum(n for tier, _, n in rows if tier == "alarm")
    warnings = sum(n for tier, _, n in rows if tier == "warning")
    offline = any(rule == OFFLINE_RULE for _, rule, _ in rows)
    stopped = producing(conn, enterprise_id) is False
    status = (
        "alarm"
        if alarms
        else "offline"
        if offline
        else "warning"
        if warnings
        else "never_reported"
        if never_reported
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
