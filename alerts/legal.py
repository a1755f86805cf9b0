"""The legal basis quoted in notification texts (rule A9 of the catalogue), in one table.

Every rule has a decision here: the bases its texts quote, or why they quote none. A basis is
quoted only from a source in force (a national law, regulation or standard), in the words of
the source it names; what is only a default of this project or its reading of a standard,
drafts and local rules are listed in ``NOT_CITED`` with the reason, and no text names them. A
rule without a basis gets no legal line: none is ever invented. Every alert must be true.

When a basis applies is part of it (``Basis.gate``):

- ``alarm``: once the case holds a finding at alarm tier. An exceedance basis is true only
  of a value above a standard's limit; a warning is a value approaching it (the derived
  fraction of the limit, a policy target, an hourly value against a daily limit), and a case
  escalated to alarm tier for being unexplained or recurring exceeded nothing by that.
- ``order``: only with the order's reference, which the case's evidence carries (``order``,
  ``order_start``, ``order_end``): a 停限产 or 错峰 order binds the enterprise it names, and
  the text says which one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from alerts.case import Case, Evidence
from ingest.china_time import CHINA_TZ

Gate = Literal["alarm", "order"]


@dataclass(frozen=True)
class Source:
    """A source the texts quote, as the catalogue gives it."""

    title: str  # how texts name it
    catalogue: str  # where the catalogue has it: section, tag and source id
    confidence: str  # the catalogue's tag: only "F" is quoted


@dataclass(frozen=True)
class NotCited:
    """A source the catalogue names that the texts deliberately do not quote."""

    title: str
    catalogue: str
    confidence: str
    reason: str
    marks: tuple[str, ...]  # strings that would show it was quoted (tests: no text has them)


@dataclass(frozen=True)
class Basis:
    """One legal hook of a rule, rendered as lines of its texts."""

    cites: str  # after "依据：" ({order} is the order's reference, for gate "order")
    sources: tuple[str, ...]  # keys of SOURCES; () for the case's own order
    confidence: str  # "F", or "order" (the order in the case's evidence)
    requires: str = ""  # what the enterprise must do, after "请" (its texts) or "企业应"
    penalty: str = ""  # after "罚则："
    judged: str = ""  # after "判定口径："
    gate: Gate = "alarm"
    window: bool = False  # with the order's period (emergency orders)
    caps: bool = False  # with the year's marked hours per capped group (A5-1)


@dataclass(frozen=True)
class Decision:
    """A rule's bases, or (none) why its texts quote no legal basis."""

    bases: tuple[Basis, ...] = ()
    none: str = ""


SOURCES: dict[str, Source] = {
    "permit-regulation": Source(
        "《排污许可管理条例》第二十一条第二款；第三十六条、第三十七条",
        "A9 [F, S27] (佛山生态环境 Q&A quoting the regulation)",
        "F",
    ),
    "hj819": Source(
        "《排污单位自行监测技术指南 总则》（HJ 819-2017）7.3",
        "A9 [F, S27]",
        "F",
    ),
    "incineration-order": Source(
        "《生活垃圾焚烧发电厂自动监测数据应用管理规定》（生态环境部令第10号）",
        "A5, A5-1, A5-2 [F, S3 quoting it, S6]",
        "F",
    ),
    "marked-data": Source(
        "标记为无效的自动监测数据，不作为超标判定依据",
        "A3, A6 [F, S4] (生态环境部 Q&A)",
        "F",
    ),
}

NOT_CITED: dict[str, NotCited] = {
    "fraud-measures": NotCited(
        "《环境监测数据弄虚作假行为判定及处理办法》（环发〔2015〕175号）",
        "B8-x [I] (named by third parties)",
        "I",
        "unverified in the catalogue; and B8-x findings are suspicion patterns at warning "
        "tier with [I] thresholds: quoting a fraud-determination text would accuse the "
        "enterprise of 弄虚作假 before anyone has verified anything",
        ("弄虚作假", "175号"),
    ),
    "criminal-law": NotCited(
        "《刑法》第二百八十六条",
        "B8-x [F-impl, low confidence]",
        "F-impl",
        "an implementation's reference, low confidence; a criminal provision has no place "
        "in an automatic notice",
        ("刑法", "二百八十六"),
    ),
    "chongqing-draft": NotCited(
        "重庆市重点排污单位自动监控建设管理规范（暂行）（征求意见稿，2020）",
        "B9, D2 [F, S7]",
        "F",
        "a local consultation draft: its obligations (report a device failure within 12 h, "
        "repair within 5 working days, manual monitoring meanwhile) are neither national "
        "law nor in force; the texts of B7-B10 state none of them",
        ("重庆", "征求意见", "12小时", "5个工作日", "手工监测"),
    ),
    "incineration-fault-marks": NotCited(
        "HJ 1307 as quoted by plant rule sheets: 故障、事故 marks at most 4 h each, to be "
        "explained in the monitoring system",
        "A7 [F, S3]",
        "F",
        "it limits an incinerator's operating-state marks, not an analyser's D/M/C flags, "
        "which is what B9 judges",
        ("HJ 1307", "HJ1307", "不超过4小时"),
    ),
    "power-guideline-draft": NotCited(
        "排污单位用电监控技术指南（征求意见稿）",
        "C [F, S20] (a draft; no thresholds reachable)",
        "F",
        "a draft national guideline: C1-C4 and C8 thresholds are [I]",
        ("用电监控技术指南",),
    ),
    "ultra-low-policy": NotCited(
        "环发〔2015〕164号 (ultra-low emission)",
        "A8 [I]",
        "I",
        "unverified; ultra-low values are a policy target, warnings unless a permit adopts them",
        ("164号", "超低排放"),
    ),
}

_EXCEEDANCE = Basis(
    cites="《排污许可管理条例》第二十一条第二款；《排污单位自行监测技术指南 总则》"
    "（HJ 819-2017）7.3",
    sources=("permit-regulation", "hj819"),
    confidence="F",
    requires="加密监测、检查超标原因，立即采取措施消除、减轻危害后果，如实进行环境管理台账"
    "记录，并报告生态环境主管部门，提交分析报告，说明原因",
    penalty="超标等异常情况不报告的，责令改正，处2万元以上20万元以下罚款，拒不改正的，"
    "责令停产整治；未如实记录污染物排放浓度、排放量的，处每次5千元以上2万元以下罚款"
    "（《排污许可管理条例》第三十六条、第三十七条）",
    judged="标记为无效的自动监测数据，不作为超标判定依据",
)
_INCINERATOR_DAILY = Basis(
    cites="《生活垃圾焚烧发电厂自动监测数据应用管理规定》（生态环境部令第10号）：焚烧炉"
    "日均值超过24小时均值限值或日均值限值，结合本年标记累计时长，可以认定其污染物排放超标",
    sources=("incineration-order",),
    confidence="F",
    caps=True,
)
_FURNACE_TEMPERATURE = Basis(
    cites="《生活垃圾焚烧发电厂自动监测数据应用管理规定》（生态环境部令第10号）：正常工况"
    "下炉膛内热电偶测量温度的五分钟均值低于850℃，一个自然日内累计超过5次的，认定为"
    "“未按照国家有关规定采取有利于减少持久性有机污染物排放的技术方法和工艺”",
    sources=("incineration-order",),
    confidence="F",
)
_EMERGENCY_ORDER = Basis(
    cites="停限产指令{order}：所列设备须在指令期间停止运行，是企业自身的应急减排义务",
    sources=(),
    confidence="order",
    requires="立即停止指令所列设备运行，落实应急减排措施",
    gate="order",
    window=True,
)
_STAGGERED_ORDER = Basis(
    cites="错峰生产指令{order}：错峰时段内所列设备不得运行，是企业须执行的错峰生产安排",
    sources=(),
    confidence="order",
    requires="在错峰时段内停止所列设备运行",
    gate="order",
)

_NO_LAW = "the catalogue names no legal basis for it (a data-quality pattern; thresholds [I])"
_SUSPICION = (
    "a suspicion pattern (B8-x) at warning tier: the only legal text the catalogue names for "
    "it is [I] (环发〔2015〕175号, see NOT_CITED)"
)
_EQUIPMENT = (
    "equipment and transmission: the catalogue's only obligations (report, repair, manual "
    "monitoring) are in the Chongqing consultation draft, not law (see NOT_CITED)"
)
_POWER = (
    "power usage without an order: the catalogue's sources are public practice and a draft "
    "guideline, no legal text (C1 at alarm tier during an emergency order does not carry the "
    "order's reference in its evidence)"
)

LEGAL: dict[str, Decision] = {
    "A1D": Decision(none=_NO_LAW),
    "A2": Decision(none=_NO_LAW),
    "A3": Decision((_EXCEEDANCE,)),
    "A4": Decision((_EXCEEDANCE,)),
    "A4V": Decision(
        none="pH outside its range: the catalogue does not establish an hourly pH value "
        "outside 6-9 as an exceedance in the sense of A9, so 第二十一条 is not quoted"
    ),
    "A5-1": Decision((_INCINERATOR_DAILY, _EXCEEDANCE)),
    "A5-2": Decision((_FURNACE_TEMPERATURE,)),
    "A5-3": Decision(
        none="an instantaneous low-temperature warning of plant platforms (A5-3), not the "
        "部令's daily count (A5-2)"
    ),
    "A7": Decision(
        none="the per-occurrence lengths come from HJ 1307 as plant rule sheets quote it "
        "(S3); the standard's number could not be confirmed, so it is not cited"
    ),
    "A7-2": Decision(none=_SUSPICION),
    "A8": Decision(
        none="ultra-low emission is a policy target (A8), not a national emission standard: "
        "no exceedance basis applies"
    ),
    "B1": Decision(none=_NO_LAW),
    "B2": Decision(none=_NO_LAW),
    "B3": Decision(none=_NO_LAW),
    "B4": Decision(none=_NO_LAW),
    "B5": Decision(none=_NO_LAW),
    "B6": Decision(none=_NO_LAW),
    "B7": Decision(none=_EQUIPMENT),
    "B8": Decision(none=_EQUIPMENT),
    "B8-1": Decision(none=_SUSPICION),
    "B8-2": Decision(none=_SUSPICION),
    "B8-3": Decision(none=_SUSPICION),
    "B8-4": Decision(none=_SUSPICION),
    "B8-5": Decision(none=_SUSPICION),
    "B8-6": Decision(none=_SUSPICION),
    "B8-7": Decision(none=_SUSPICION),
    "B8-8": Decision(none=_SUSPICION),
    "B9": Decision(none=_EQUIPMENT),
    "B10": Decision(none=_EQUIPMENT),
    "B11": Decision(none=_NO_LAW),
    "C1": Decision(none=_POWER),
    "C2": Decision(none=_POWER),
    "C3": Decision(none=_POWER),
    "C4": Decision(none=_POWER),
    "C5": Decision((_EMERGENCY_ORDER,)),
    "C6": Decision((_STAGGERED_ORDER,)),
    "C7": Decision(
        none="擅自扩大产能 is public practice (Zhangjiagang, S23) on an [I] threshold; the "
        "catalogue names no legal text for it"
    ),
    "C8": Decision(none=_EQUIPMENT),
    "C8-2": Decision(none=_POWER),
}

MARKING_NAMES = {
    "startup": "启炉",
    "shutdown": "停炉",
    "fault": "故障",
    "accident": "事故",
    "maintenance": "维护",
    "calibration": "校准",
    "oven_drying": "烘炉",
    "cooling": "停炉降温",
    "stopped": "停产",
}


def legal_lines(case: Case, *, to_enterprise: bool) -> list[str]:
    """The text's lines on the legal basis of the case (none for a rule without one):
    依据, 判定口径, the year's marks (A5-1), what the enterprise must do while the case is
    open ("请…" in the enterprise's texts, "企业应…" in the others), 罚则."""
    decision = LEGAL.get(case.rule)
    if decision is None or not decision.bases:
        return []
    cites: list[str] = []
    judged: list[str] = []
    requires: list[str] = []
    penalties: list[str] = []
    caps: list[dict[str, Any]] = []
    for basis in decision.bases:
        if basis.gate == "alarm":
            if not alarm_fired(case.evidence):
                continue
            cites.append(basis.cites)
        else:
            orders = case_orders(case.evidence)
            if not orders:
                continue
            cites += [basis.cites.format(order=_order(o, basis.window)) for o in orders]
        judged += [basis.judged] if basis.judged else []
        requires += [basis.requires] if basis.requires else []
        penalties += [basis.penalty] if basis.penalty else []
        if basis.caps:
            caps = marking_caps(case.evidence)
    lines: list[str] = []
    if cites:
        lines.append(f"- 依据：{'；'.join(_unique(cites))}")
    if judged:
        lines.append(f"- 判定口径：{'；'.join(_unique(judged))}")
    if caps:
        lines.append(f"- 本年标记：{'；'.join(_cap(c) for c in caps)}")
    if requires and case.state not in ("closed", "resolved"):
        lead = "请" if to_enterprise else "企业应"
        lines.append(f"- {lead}{'；'.join(_unique(requires))}")
    if penalties:
        lines.append(f"- 罚则：{'；'.join(_unique(penalties))}")
    return lines


def _entries(evidence: Evidence) -> list[dict[str, Any]]:
    """The findings a case keeps: the first, the trail and the peaks, latest last."""
    out = [evidence.first] if evidence.first else []
    return out + list(evidence.peaks.values()) + list(evidence.trail)


def alarm_fired(evidence: Evidence) -> bool:
    """Whether the case holds a finding that fired at alarm tier (its rule's own alarm)."""
    return any(e.get("state") == "fire" and e.get("tier") == "alarm" for e in _entries(evidence))


def case_orders(evidence: Evidence) -> list[dict[str, Any]]:
    """The orders the case's findings name (C5, C6), each once, in order of appearance."""
    out: dict[str, dict[str, Any]] = {}
    for e in _entries(evidence):
        detail = e.get("detail") or {}
        if "order" in detail:
            out.setdefault(str(detail["order"]), detail)
    return list(out.values())


def marking_caps(evidence: Evidence) -> list[dict[str, Any]]:
    """The year's marked hours per capped group from the latest alarm finding listing them."""
    for e in reversed(_entries(evidence)):
        caps = (e.get("detail") or {}).get("marking_caps")
        if e.get("tier") == "alarm" and e.get("state") == "fire" and caps:
            return list(caps)
    return []


def _order(detail: dict[str, Any], window: bool) -> str:
    reference = str(detail.get("order") or "")
    text = f" {reference}" if reference else ""
    start, end = detail.get("order_start"), detail.get("order_end")
    if window and isinstance(start, int) and isinstance(end, int):
        text += f"（{_epoch(start)} 至 {_epoch(end)}）"
    return text


def _epoch(value: int) -> str:
    return datetime.fromtimestamp(value, CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _cap(cap: dict[str, Any]) -> str:
    types = "、".join(MARKING_NAMES.get(t, t) for t in str(cap.get("types", "")).split("+"))
    return f"{types} {cap.get('marked_hours', 0):g} 小时（上限 {cap.get('cap_hours', 0):g} 小时）"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
