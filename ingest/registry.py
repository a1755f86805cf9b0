"""Who may send data: enterprises' outlets (by data-logger MN), power meters (by id, and by
the (MN, code) of the HJ 212 logger that reports them), and gateways (a sender id and the MNs
and meters it may speak for).

Built from the configuration by the wiring layer; ingest only looks things up. A message
from an MN or meter that is not registered becomes a dead letter, never a reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

OutletKind = Literal["gas", "water"]
MeterRole = Literal["production", "control"]


@dataclass(frozen=True, slots=True)
class Outlet:
    enterprise_id: str
    outlet_id: str
    mn: str
    pw: str | None  # None: the password is not checked for this logger
    kind: OutletKind
    name: str = ""
    accept_modbus_crc: bool = False  # tolerate the CRC-16/MODBUS variant from this logger
    max_segment_bytes: int = 1024  # tolerate over-long segments from this logger
    encoding: str = "utf-8"  # the text encoding of its packets (ingest.hj212.charset)

    @property
    def who(self) -> str:
        return f"outlet {self.outlet_id}"


@dataclass(frozen=True, slots=True)
class Meter:
    enterprise_id: str
    meter_id: str
    role: MeterRole
    name: str = ""
    rated_kw: float | None = None
    # The HJ 212 logger that reports this meter, and the meter's code in its frames: an ST=44
    # factor code (d20405) or a CN 2021 device code (SB1). None: JSON only.
    mn: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class MeterLogger:
    """A data logger whose MN no outlet has: it reports meters only (a power-monitoring logger).
    No configuration entry of its own sets its tolerances, so they are the [ingest] defaults."""

    mn: str
    accept_modbus_crc: bool = False
    max_segment_bytes: int = 1024
    pw: None = None  # nothing configures a password for it: never checked

    @property
    def who(self) -> str:
        return f"the meters' logger {self.mn}"


@dataclass(frozen=True, slots=True)
class Gateway:
    """A sender that carries several loggers' frames or meters' readings on its own topic."""

    gateway_id: str
    mns: frozenset[str] = frozenset()
    meters: frozenset[str] = frozenset()


class Registry:
    """Lookup tables for the hot path; rebuilt (not mutated) when the configuration changes."""

    def __init__(
        self,
        outlets: Iterable[Outlet] = (),
        meters: Iterable[Meter] = (),
        *,
        accept_modbus_crc: bool = False,
        max_segment_bytes: int = 1024,
        gateways: Iterable[Gateway] = (),
        encoding: str = "utf-8",
    ) -> None:
        """``accept_modbus_crc`` and ``max_segment_bytes`` apply to loggers of meters only;
        ``encoding`` to them and to MNs no outlet has."""
        self.encoding = encoding
        self._gateways = {g.gateway_id: g for g in gateways}
        self._by_mn: dict[str, Outlet] = {}
        for outlet in outlets:
            if outlet.mn in self._by_mn:
                raise ValueError(f"MN {outlet.mn!r} registered twice")
            self._by_mn[outlet.mn] = outlet
        self._meters: dict[str, Meter] = {}
        self._by_source: dict[str, dict[str, Meter]] = {}  # MN → code → meter
        for meter in meters:
            if meter.meter_id in self._meters:
                raise ValueError(f"meter {meter.meter_id!r} registered twice")
            self._meters[meter.meter_id] = meter
            if meter.mn is not None and meter.code is not None:
                self._add_source(meter, meter.mn, meter.code)
        self._meter_loggers = {
            mn: MeterLogger(mn, accept_modbus_crc, max_segment_bytes)
            for mn in self._by_source
            if mn not in self._by_mn
        }

    def _add_source(self, meter: Meter, mn: str, code: str) -> None:
        codes = self._by_source.setdefault(mn, {})
        if code in codes:
            raise ValueError(f"MN {mn!r} code {code!r} registered twice")
        codes[code] = meter

    def outlet(self, mn: str) -> Outlet | None:
        return self._by_mn.get(mn)

    def meter(self, meter_id: str) -> Meter | None:
        return self._meters.get(meter_id)

    def meter_at(self, mn: str, code: str) -> Meter | None:
        """The meter that the logger ``mn`` reports under ``code``."""
        codes = self._by_source.get(mn)
        return None if codes is None else codes.get(code)

    def meters_of(self, mn: str) -> Mapping[str, Meter] | None:
        """Code → meter for the logger ``mn``; None when it reports no meter (one lookup: the
        common case on the hot path)."""
        return self._by_source.get(mn)

    def encoding_of(self, mn: str | None) -> str:
        """The text encoding of the logger ``mn``'s packets: its outlet's, else the default."""
        outlet = self._by_mn.get(mn) if mn is not None else None
        return self.encoding if outlet is None else outlet.encoding

    def meter_logger(self, mn: str) -> MeterLogger | None:
        """The logger ``mn`` when it reports meters and no outlet has its MN."""
        return self._meter_loggers.get(mn)

    def gateway(self, sender: str) -> Gateway | None:
        return self._gateways.get(sender)

    def may_send_mn(self, sender: str, mn: str) -> bool:
        """Whether the sender (the topic's sender level) may speak for the logger ``mn``: its
        own MN, or one its gateway entry lists."""
        if sender == mn:
            return True
        gateway = self._gateways.get(sender)
        return gateway is not None and mn in gateway.mns

    def logger(self, mn: str) -> Outlet | MeterLogger | None:
        """The data logger ``mn``: an outlet's, else a logger of meters only."""
        return self._by_mn.get(mn) or self._meter_loggers.get(mn)

    def carrier_of(self, mn: str) -> str:
        """Who a data logger's frames come from on a connection it opens itself (the TCP
        gateway binds the connection to this sender): the [[gateways]] entry that lists the
        MN (a gateway-type logger carrying several MNs), else the logger itself."""
        for gateway in self._gateways.values():
            if mn in gateway.mns:
                return gateway.gateway_id
        return mn

    def password_ok(self, mn: str, pw: str) -> bool:
        """Whether ``pw`` is the configured PW of the logger ``mn`` (True when it has none)."""
        outlet = self._by_mn.get(mn)
        return outlet is None or outlet.pw is None or outlet.pw == pw

    def may_send_meter(self, sender: str, meter_id: str) -> bool:
        """Whether the sender may speak for the meter: the meter itself, or its gateway."""
        if sender == meter_id:
            return True
        gateway = self._gateways.get(sender)
        return gateway is not None and meter_id in gateway.meters

    def is_logger(self, mn: str) -> bool:
        """Whether frames from ``mn`` are accepted: an outlet's logger or a meters' logger."""
        return mn in self._by_mn or mn in self._meter_loggers

    @property
    def outlets(self) -> list[Outlet]:
        return list(self._by_mn.values())

    @property
    def meters(self) -> list[Meter]:
        return list(self._meters.values())

    @property
    def gateways(self) -> list[Gateway]:
        return list(self._gateways.values())
