"""Helpers to build test packets with a correct (or deliberately wrong) CRC."""

from __future__ import annotations

from ingest.hj212.crc import crc_hj212, crc_modbus


def packet(
    segment: str,
    *,
    crc: str | None = None,
    tail: str = "\r\n",
    length: int | None = None,
    modbus: bool = False,
    encoding: str = "utf-8",
) -> bytes:
    data = segment.encode(encoding)
    if crc is None:
        crc = f"{(crc_modbus(data) if modbus else crc_hj212(data)):04X}"
    declared = len(data) if length is None else length
    return f"##{declared:04d}".encode() + data + crc.encode() + tail.encode()


SEG_2011 = (
    "QN=20261121080000123;ST=31;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&DataTime=20261121080000;a21026-Rtd=12.30,a21026-Flag=N;a21002-Rtd=45.6,a21002-Flag=N&&"
)
