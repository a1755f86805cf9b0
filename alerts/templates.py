"""Notification texts, in Chinese: the enterprise, the outlet, the factor, the value against
its limit, the time, the legal basis where the rule has one (``alerts.legal``, rule A9) and a
link to the case."""

from __future__ import annotations

import re
from datetime import datetime

from alerts.case import Case
from alerts.legal import legal_lines
from alerts.policy import AlertPolicy
from alerts.quantity import UNIT_NAMES, quantity
from alerts.workflow import CLUE_RULE, INSPECTION_RULE, STATE_NAMES
from ingest.china_time import CHINA_TZ
from ingest.hj212.codes import pollutant_table
from rules.findings import RULES

_CHINESE_TERM = re.compile(r"\(([^()]*[\u4e00-\u9fff][^()]*)\)")
TIER_NAMES = {"warning": "预警", "alarm": "报警"}
EVENT_TITLES = {
    "case.opened": "{tier}：{enterprise} {rule}",
    "case.escalated": "升级为报警：{enterprise} {rule}",
    "case.reopened": "回头看复发：{enterprise} {rule}",
    "case.dispatched": "派单：{enterprise} {rule}",
    "case.overdue": "逾期：{enterprise} {rule}",
    "case.changed": "{state}：{enterprise} {rule}",
}


def rule_name(rule: str) -> str:
    """The Chinese term of a rule (the part in parentheses of its catalogue line)."""
    if rule == CLUE_RULE:
        return "线索"
    if rule == INSPECTION_RULE:
        return "双随机检查"
    text = RULES.get(rule, rule)
    term = _CHINESE_TERM.search(text)
    return term.group(1) if term else text


def factor_name(code: str | None) -> str:
    if code is None:
        return ""
    entry = pollutant_table().get(code)
    return f"{entry.name_zh}({code})" if entry else code


def _time(value: datetime | None) -> str:
    return value.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if value else "—"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:g} {unit}".strip()


def quantity_line(case: Case) -> str:
    """What the case measures in its rule family's terms (alerts.quantity): "小时均值：152.5
    mg/m³，排放限值 100 mg/m³", "标记持续时长：5 小时，预警时长 4 小时"."""
    q = quantity(case)
    unit = UNIT_NAMES.get(q.unit, q.unit)
    line = f"- {q.name}：{_number(q.value, unit)}"
    if q.limit is not None:
        line += f"，{q.limit_name} {_number(q.limit, unit)}"
    return line + ("（持续中）" if q.ongoing else "")


def _to_enterprise(case: Case, event: str) -> bool:
    """Whether the text goes to the enterprise: its reminders (a case in ``reminded``, also
    when its explanation is overdue) and the dispatch (the case book routes these to it)."""
    return event == "case.dispatched" or case.state == "reminded"


def render(case: Case, event: str, policy: AlertPolicy, note: str = "") -> tuple[str, str]:
    info = policy.enterprise(case.enterprise_id)
    source = info.source_names.get(case.source_id, "")
    source_text = f"{source}（{case.source_id}）" if source else case.source_id
    rule = f"{rule_name(case.rule)}（{case.rule}）"
    title = EVENT_TITLES.get(event, EVENT_TITLES["case.changed"]).format(
        tier=TIER_NAMES.get(case.tier, case.tier),
        enterprise=info.name,
        rule=rule_name(case.rule),
        state=STATE_NAMES.get(case.state, case.state),
    )
    lines = [
        f"### {title}",
        f"- 企业：{info.name}（{case.enterprise_id}）",
        f"- 监测点：{source_text}",
        f"- 规则：{rule}，{TIER_NAMES.get(case.tier, case.tier)}",
    ]
    factor = case.factor or next(iter(case.evidence.active), None)
    if factor and factor != "-":
        lines.append(f"- 因子：{factor_name(factor)}")
    lines.append(quantity_line(case))
    if quantity(case).exceedance and case.peak_multiple is not None and case.peak_multiple > 0:
        lines.append(f"- 最大超标倍数：{case.peak_multiple:g}")
    lines.append(
        f"- 时间：{_time(case.first_seen)} 起，最近 {_time(case.last_seen)}，共 {case.count} 次"
    )
    lines.append(f"- 状态：{STATE_NAMES.get(case.state, case.state)}")
    if case.explain_due and case.state == "reminded":
        lines.append(f"- 请于 {_time(case.explain_due)} 前提交异常情况说明")
    if case.feedback_due and case.state in ("dispatched", "on_site"):
        lines.append(f"- 反馈期限：{_time(case.feedback_due)}")
    lines += legal_lines(case, to_enterprise=_to_enterprise(case, event))
    if case.escalation:
        lines.append(f"- 升级原因：{case.escalation}")
    if note:
        lines.append(f"- 说明：{note}")
    lines.append(f"- 详情：{policy.dashboard_url.rstrip('/')}/cases/{case.id}")
    return title, "\n".join(lines)
