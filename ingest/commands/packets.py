"""The request packets the platform sends a data logger (HJ 212-2017 §6.5, Table 9).

A request carries the logger's own ST, PW and MN, a new QN, and the 2017 Flag with the A
bit, so that the logger answers 9011 (QnRtn), then uploads what was asked for (data, its
time), then 9012 (ExeRtn).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from ingest.hj212.encoder import encode_cp, encode_packet, encode_segment, make_qn, version_flag
from ingest.hj212.model import CpValue

# What a recall may ask for: the data uploads with a BeginTime/EndTime request form.
RECALL_CNS = {"2051": "minute data", "2061": "hour data", "2031": "day data"}
GET_TIME, SET_TIME = "1011", "1012"
# A logger's system code by the outlet's kind (ST 31 flue gas, 32 wastewater).
ST_OF_KIND = {"gas": "31", "water": "32"}

# QnRtn (Table 7) and ExeRtn (Table 6), for the audit's wording.
QN_RTN = {
    1: "准备执行请求",
    2: "请求被拒绝",
    3: "PW 错误",
    4: "MN 错误",
    5: "ST 错误",
    6: "Flag 错误",
    7: "QN 错误",
    8: "CN 错误",
    9: "CRC 校验错误",
    100: "未知错误",
}
EXE_RTN = {
    1: "执行成功",
    2: "执行失败，但不知道原因",
    3: "命令请求条件错误",
    4: "通讯超时",
    5: "系统繁忙不能执行",
    6: "系统故障",
    100: "没有数据",
}


def request_packet(
    *, st: str, cn: str, pw: str, mn: str, cp: Mapping[str, CpValue] | str, now: datetime
) -> tuple[str, bytes]:
    """(QN, packet) of a request asking for an answer; ``cp`` as fields, or the CP text of
    an operator's command."""
    qn = make_qn(now)
    segment = encode_segment(
        qn=qn,
        st=st,
        cn=cn,
        pw=pw,
        mn=mn,
        flag=version_flag("2017", ack=True),
        cp=cp if isinstance(cp, str) else encode_cp(cp, {}),
    )
    return qn, encode_packet(segment)


_PW_FIELD = re.compile(r"(?<=[;&])PW=[^;&]*")


def without_pw(packet: str | None) -> str | None:
    """A packet as shown to people and exported (the API, the CLI, a case's record): its PW
    masked, since the PW is the logger's credential. The database keeps it exactly as sent."""
    return _PW_FIELD.sub("PW=******", packet) if packet else packet


def check_cp_text(cp: str) -> str | None:
    """Why an operator's CP text cannot go into a packet, or None."""
    if "&&" in cp:
        return "CP 内容不能包含 &&（由平台加上）"
    if any(c in cp for c in "\r\n\x00"):
        return "CP 内容不能包含换行或 NUL"
    if len(cp.encode()) > 950:
        return "CP 内容超过 950 字节（HJ 212-2017 表 3）"
    return None
