"""What a case measures, in its rule family's own terms: a concentration against its emission
limit (超标, the only cases with a 超标倍数), a duration against the time a rule allows, a
rate against its minimum, a count, a power; and the time the rule looked at, which the case
page marks on its chart.

The findings carry each value's own unit (rules/judge.py, rules/power_judge.py); this module
names the quantity and its threshold for people, and gives the rules whose findings carry no
value (an episode such as C1's: production on while its control device is off) a duration.
The API (``CaseOut.quantity``), the case page and the queue read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.case import Case
from alerts.workflow import CLUE_RULE, INSPECTION_RULE
from rules.judge import EXCEEDANCE_RULES

# rule → (the quantity, the threshold it is judged against), for findings with a value.
NAMES: dict[str, tuple[str, str]] = {
    "A1D": ("设备小时值", ""),
    "A3": ("小时均值", "排放限值"),
    "A4": ("日均值", "排放限值"),
    "A5-1": ("日均值", "排放限值"),
    "A4V": ("超出范围的值", "允许范围界限"),
    "A5-2": ("炉温低于850℃的五分钟均值", "每日允许"),
    "A5-3": ("工况值", "正常范围界限"),
    "A7": ("标记时长", "允许时长"),
    "A8": ("超低限值小时达标率", "最低要求"),  # not 超低排放: no policy is quoted (alerts/legal.py)
    "B1": ("零值持续时长", "判定时长"),
    "B2": ("恒值持续时长", "判定时长"),
    "B3": ("最小值", "下限"),
    "B4": ("最大值", "量程上限"),
    "B5": ("监测值", "合理范围界限"),
    "B6": ("小时均值变幅", "突变阈值"),
    "B8-1": ("氧含量", "同类排口参考值"),
    "B8-2": ("氧含量", "正常燃烧范围界限"),
    "B8-3": ("氧含量", "判定上限"),
    "B8-4": ("烟气温度", "判定上限"),
    "B8-5": ("上报折算值", "重算折算值"),
    "B8-6": ("烟气流量", "流量下限"),
    "B8-7": ("平台值", ""),
    "B8-8": ("相同记录数", ""),
    "B9": ("标记持续时长", "预警时长"),
    "B10": ("有效传输率", "最低要求"),
    "B11": ("数据间隔", "配置间隔"),
    "C2": ("开启滞后", "允许滞后"),
    "C3": ("提前关闭", "允许提前"),
    "C7": ("日运行水平", "历史水平上限"),
    "C8-2": ("烟气流量", "生产判定流量"),
}
# Episodes: one finding when the condition starts to hold, one clear when it ends; the
# quantity is how long the latest episode lasted (so far, while it holds).
EPISODES: dict[str, tuple[str, str]] = {
    "B8": ("离线时长", "离线判定时长"),
    "C1": ("不同步时长", ""),
    "C4": ("低负荷时长", ""),
    "C5": ("违规运行时长", ""),
    "C6": ("违规运行时长", ""),
    "C8": ("离线时长", "离线判定时长"),
}
# Hourly conditions without a value: the quantity is the number of hours found.
HOURLY: dict[str, str] = {"A2": "无法折算小时数", "A7-2": "不符小时数", "B7": "缺失小时数"}
UNIT_NAMES = {"h": "小时", "min": "分钟", "s": "秒"}  # durations, in Chinese texts


@dataclass(frozen=True)
class Quantity:
    name: str  # e.g. 小时均值, 标记持续时长, 有效传输率, 不同步时长
    value: float | None
    unit: str  # the value's and the limit's: mg/m3, h, min, s, %, 次, 条, kW, ℃ …
    limit_name: str  # e.g. 排放限值, 预警时长, 最低要求; "" when the rule states no threshold
    limit: float | None
    exceedance: bool  # the limit is an emission limit, and 超标倍数 applies
    since: datetime  # the time the rule looked at: from …
    until: datetime  # … to
    ongoing: bool  # an episode that still holds (its duration is so far)


def quantity(case: Case) -> Quantity:
    if case.rule == INSPECTION_RULE:  # a 双随机 inspection: one visit
        return Quantity("抽查", 1.0, "次", "", None, False, case.first_seen, case.last_seen, False)
    if case.rule == CLUE_RULE:  # a case a clue opened: how many clues it gathered
        return Quantity(
            "线索数",
            float(case.count),
            "条",
            "",
            None,
            False,
            case.first_seen,
            case.last_seen,
            False,
        )
    if case.rule in EPISODES:
        return _episode(case)
    if case.rule in HOURLY:
        return Quantity(
            HOURLY[case.rule],
            float(case.count),
            "h",
            "",
            None,
            False,
            case.first_seen,
            case.last_seen,
            False,
        )
    name, limit_name = NAMES.get(case.rule, ("监测值", "限值"))
    exceedance = case.rule in EXCEEDANCE_RULES
    latest = _latest_fire(case.evidence.trail)
    if exceedance and latest.get("tier") == "warning":
        limit_name = "预警值"  # a warning's threshold is a fraction of the limit
    if exceedance and "reference_o2" in (latest.get("detail") or {}):
        name += "（折算）"  # the limit applies to the value converted to the reference O2
    value, limit, unit = case.value, case.limit_value, case.unit
    if case.rule in ("C2", "C3"):  # seconds from the rule; minutes read better past two
        value, limit, unit = _duration(value, limit, "s")
    since = case.first_seen
    first = case.evidence.first or {}
    hours = (first.get("detail") or {}).get("hours")
    if case.rule == "B9" and isinstance(hours, int) and hours > 1:
        since -= timedelta(hours=hours - 1)  # it fires on a run's nth flagged hour: from the 1st
    return Quantity(
        name,
        value,
        unit,
        limit_name if limit is not None else "",
        limit,
        exceedance,
        since,
        case.last_seen,
        False,
    )


def _episode(case: Case) -> Quantity:
    name, limit_name = EPISODES[case.rule]
    trail = case.evidence.trail
    fire = _latest_fire(trail)
    since = _instant(fire.get("window_start")) or case.first_seen
    until = _instant(fire.get("window_end")) or case.last_seen
    after = trail[trail.index(fire) + 1 :] if fire else []
    cleared = next((e for e in after if e.get("state") == "clear"), None)
    ongoing = cleared is None and case.condition == "active"
    if cleared is not None:
        until = max(since, _instant(cleared.get("window_start")) or until)
    value, limit, unit = _duration((until - since).total_seconds(), case.limit_value, "s")
    return Quantity(
        name,
        value,
        unit,
        limit_name if limit is not None else "",
        limit,
        False,
        since,
        until,
        ongoing,
    )


def _latest_fire(trail: list[dict[str, Any]]) -> dict[str, Any]:
    return next((e for e in reversed(trail) if e.get("state") == "fire"), {})


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _duration(
    value: float | None, limit: float | None, unit: str
) -> tuple[float | None, float | None, str]:
    """Seconds as seconds up to two minutes, as minutes up to two hours, else as hours: the
    value and its limit in the value's unit."""
    if unit != "s":
        return value, limit, unit
    basis = abs(value) if value is not None else abs(limit) if limit is not None else 0.0
    scale, unit = (1, "s") if basis < 120 else (60, "min") if basis < 7200 else (3600, "h")
    return _scaled(value, scale), _scaled(limit, scale), unit


def _scaled(value: float | None, scale: int) -> float | None:
    return None if value is None else round(value / scale, 1 if scale > 1 else 0)
