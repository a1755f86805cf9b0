"""Configuration schema. Every field has a default that suits a small deployment.

Models forbid unknown keys so that a misspelt setting is an error, not a silent default.
"""

from __future__ import annotations

import re
from copy import copy
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from nonsite.config.mqtt_url import parse_broker_url

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
TopicFilter = Annotated[str, Field(min_length=1, max_length=256)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ARCHIVE_FILE = "archive.sqlite3"  # the raw archive, in the data directory
DATABASE_FILE = "nonsite.db"  # the embedded service database (SQLite), likewise


class ServiceSection(Section):
    data_dir: Path = Path("data")
    http_listen: str = "127.0.0.1:8080"
    # Served behind TLS (a reverse proxy with HTTPS): the session cookie is then Secure. A
    # request a trusted proxy marks X-Forwarded-Proto: https gets a Secure cookie regardless.
    secure_cookies: bool = False
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or
    # networks, e.g. ["10.0.0.5", "10.1.0.0/16"]. Empty: the connecting peer is the client,
    # whatever those headers say (loopback included).
    trusted_proxies: list[str] = Field(default_factory=list, max_length=100)
    # The largest HTTP request body accepted; a larger one is answered 413.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # The largest file uploaded (evidence for a case or a clue, a file of clues).
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, le=2 * 1024**3)

    @property
    def archive_path(self) -> Path:
        return self.data_dir / ARCHIVE_FILE

    @field_validator("http_listen")
    @classmethod
    def _http_listen(cls, value: str) -> str:
        return _host_port(value, "127.0.0.1:8080")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress  # noqa: PLC0415 - only this section needs it

        out = []
        for entry in value:
            try:
                out.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network, e.g. 10.0.0.5 or 10.1.0.0/16"
                ) from None
        return out


class Subscription(Section):
    kind: Literal["hj212", "power"]
    # One "+" level stands for the sender: the MN (hj212), the meter id (power) or a gateway
    # id. The broker's ACL binds that level to the sender's login (deploy/mosquitto/acl), and
    # ingest accepts a frame only for an MN (or meter) that sender may speak for.
    filter: TopicFilter
    qos: Literal[0, 1] = 1

    @field_validator("filter")
    @classmethod
    def _one_sender_level(cls, value: str) -> str:
        levels = value.split("/")
        if value.startswith("$share/"):
            levels = levels[2:]
        if "#" in levels or levels.count("+") != 1:
            raise ValueError(
                "must have exactly one + level, the sender (logger MN, meter or gateway id), "
                "and no #, e.g. hj212/+"
            )
        return value


def _default_subscriptions() -> list[Subscription]:
    return [
        Subscription(kind="hj212", filter="hj212/+"),
        Subscription(kind="power", filter="power/+"),
    ]


class MqttSection(Section):
    url: str = ""  # empty: run an embedded broker (demo / trial only)
    client_id: Identifier = "nonsite-ingest"
    protocol: Literal["5", "3.1.1"] = "5"
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    shared_group: Identifier | None = None
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    subscriptions: list[Subscription] = Field(default_factory=_default_subscriptions, min_length=1)
    reply_topic: str = "hj212/{mn}/reply"  # where 9014 data replies go; "" disables replies
    embedded_port: int = Field(default=0, ge=0, le=65535)  # 0: a free port

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if value:
            parse_broker_url(value)
        return value

    @field_validator("reply_topic")
    @classmethod
    def _reply_topic(cls, value: str) -> str:
        if value and "{mn}" not in value:
            raise ValueError("must contain {mn}, e.g. hj212/{mn}/reply")
        if any(c in value for c in "+#"):
            raise ValueError("a topic to publish to cannot contain + or #")
        return value


def _text_encoding(value: str) -> str:
    from ingest.hj212.charset import text_encoding  # noqa: PLC0415

    return text_encoding(value)


class IngestSection(Section):
    # 256 KiB: a gateway's batch of 1000 full power readings is about 130 KB.
    max_payload_bytes: int = Field(default=256 * 1024, ge=256)
    # PW 校验: a frame's PW must equal its outlet's pw; with it on, every outlet sets pw.
    check_pw: bool = True
    accept_modbus_crc: bool = False
    max_segment_bytes: int = Field(default=1024, ge=1024)
    # The text encoding of HJ 212 packets (the standard's utf-8; gbk or gb18030 from many
    # Chinese loggers), for loggers whose outlet does not set its own.
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, value: str) -> str:
        return _text_encoding(value)


def _host_port(value: str, example: str, *, free_port: bool = False) -> str:
    """``free_port``: port 0 (the system chooses) is allowed."""
    host, sep, port = value.rpartition(":")
    lowest = 0 if free_port else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise ValueError(f"must be host:port, e.g. {example}")
    return value


class TcpSection(Section):
    """The HJ 212 TCP gateway (``nonsite gateway``; inside ``serve`` and ``demo`` when
    ``listen`` is set): data loggers connect to it as the standard has them."""

    listen: str = ""  # host:port, e.g. "0.0.0.0:9212"; empty: serve runs no gateway
    # The gateway's own broker login (it publishes for every logger: ACL write hj212/#, read
    # hj212/+/reply); empty: the [mqtt] url.
    mqtt_url: str = ""
    client_id: Identifier = "nonsite-gateway"
    tls_cert_file: Path | None = None  # both set: loggers connect with TLS
    tls_key_file: Path | None = None
    idle_timeout_s: float = Field(default=1800.0, ge=1)  # no byte this long: closed
    packet_timeout_s: float = Field(default=60.0, gt=0)  # a packet's bytes arrive within this
    max_connections: int = Field(default=10_000, ge=1)
    max_connections_per_address: int = Field(default=64, ge=1)  # many loggers share a NAT
    max_unacknowledged: int = Field(default=256, ge=2)  # per connection, before reading pauses
    ack_timeout_s: float = Field(default=10.0, gt=0)  # no PUBACK within this: no 9014
    metrics_listen: str = ""  # nonsite gateway alone: host:port of its /metrics

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port(value, "0.0.0.0:9212", free_port=True) if value else value

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, value: str) -> str:
        return _host_port(value, "127.0.0.1:9213") if value else value

    @field_validator("mqtt_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if value:
            parse_broker_url(value)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> TcpSection:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together (TLS needs both)")
        return self


class CommandsSection(Section):
    """Commands to data loggers (ingest.commands): recall of missing data, the clock."""

    recall: bool = True  # B7: ask the logger for the missing hour (补遗)
    recall_per_hour: int = Field(default=6, ge=1)  # per logger; over it: recorded, not sent
    recall_repeat_h: float = Field(default=24.0, gt=0)  # an interval is asked for once in this
    time_check_every_h: float = Field(default=24.0, ge=0)  # read each clock (1011); 0: never
    clock_tolerance_s: float = Field(default=60.0, gt=0)  # drift beyond this: set it (1012)
    answer_timeout_s: float = Field(default=300.0, ge=5)  # no 9012 within this: no_answer


class ArchiveSection(Section):
    retention_days: int = Field(default=90, ge=1)  # raw frames, dead letters, minute detail
    # The hour and day values the rules keep (charts, reports): years, for the reports of a
    # period and the 回头看 of a case long closed.
    values_retention_days: int = Field(default=1095, ge=1)
    # "full": fsync every group commit (survives power loss); "normal": survives a process
    # crash, may lose the last commits on power loss.
    durability: Literal["full", "normal"] = "full"
    batch_max_messages: int = Field(default=2000, ge=1, le=100_000)


class ClusterSection(Section):
    """Cluster mode (docs/operations.md, Scale out): ingest nodes publish to a NATS JetStream
    stream, workers own its partitions. Unused by the single-node ``nonsite serve``."""

    nats: list[str] = Field(default_factory=list)  # nats://host:port of the NATS servers
    # The node's NATS login (deploy/nats/nats-common.conf: users ingest, worker, web, each
    # allowed only what its role does); the password best from NONSITE_NATS_PASSWORD.
    nats_user: str = ""
    nats_password: str = ""
    stream: Identifier = "NONSITE_RAW"
    subject_prefix: Identifier = "nonsite.raw"
    # Fixed for the stream's life: an enterprise's partition is a hash of it modulo this.
    partitions: int = Field(default=16, ge=1, le=1024)
    replicas: int = Field(default=3, ge=1, le=5)
    duplicate_window_s: float = Field(default=600.0, gt=0)  # a re-delivery within it: once
    ack_timeout_s: float = Field(default=5.0, gt=0)  # JetStream's ack, before a retry
    lease_ttl_s: float = Field(default=6.0, ge=1)  # a dead worker's partitions wait this long
    worker_id: str = ""  # empty: host name and process id

    @field_validator("nats")
    @classmethod
    def _nats_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("nats://", "tls://")) or ":" not in url.split("//", 1)[1]:
                raise ValueError(f"{url!r} is not a NATS server URL, e.g. nats://10.0.0.5:4222")
        return value


class DatabaseSection(Section):
    url: str = ""  # empty: SQLite file nonsite.db in the data directory
    # How long a person's request waits for the database through a failover (a standby
    # being promoted) before it is answered 503: it is then repeated, not lost or doubled.
    retry_s: float = Field(default=30.0, ge=0, le=300)


class FactorLimits(Section):
    """Per-factor overrides of a preset (or the whole definition when there is no preset)."""

    unit: str | None = None
    hour_alarm: float | None = Field(default=None, gt=0)
    hour_warning: float | None = Field(default=None, gt=0)
    day_alarm: float | None = Field(default=None, gt=0)
    day_warning: float | None = Field(default=None, gt=0)
    value_high: float | None = None
    value_low: float | None = None
    band_low: float | None = None  # A5-3: the hourly mean's normal band (process factors)
    band_high: float | None = None
    band_high_2: float | None = None  # ... and its second level (过高)
    ultra_low: float | None = Field(default=None, gt=0)  # A8: the hourly ultra-low target
    reference_o2: float | None = Field(default=None, ge=0, lt=21)
    no_o2_conversion: bool = False  # judge measured values even where the preset converts
    range_max: float | None = Field(default=None, gt=0)
    plausible_min: float | None = None
    plausible_max: float | None = None


class MarkingCapConfig(Section):
    """Marks of these types excuse data for at most ``hours`` per natural year."""

    types: list[str] = Field(min_length=1)
    hours: float = Field(gt=0)

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        from rules.markings import MARKING_TYPES  # noqa: PLC0415

        for name in value:
            if name not in MARKING_TYPES:
                raise ValueError(
                    f"unknown marking type {name!r}; known: {', '.join(MARKING_TYPES)}"
                )
        return value


class RulesSection(Section):
    """Defaults of the rule parameters the catalogue marks [I]; outlets inherit them, after
    their industry preset's, and may override those named in ``OUTLET_RULE_PARAMS``."""

    # The minute-data interval is read from the data; set, it overrides that for every outlet
    # (and the data disagreeing with it is a finding, B11).
    minute_interval_min: int | None = Field(default=None, ge=1, le=60)
    valid_minutes_per_hour: int = Field(default=45, ge=1, le=60)
    valid_hours_per_day_gas: int = Field(default=20, ge=1, le=24)
    valid_hours_per_day_water: int = Field(default=18, ge=1, le=24)
    valid_flags: list[Annotated[str, Field(min_length=1, max_length=1)]] = Field(
        default_factory=lambda: ["N", "T"]
    )
    warning_fraction: float | None = Field(default=0.8, gt=0, le=1)
    hourly_warning_for_daily_limit: bool = True
    zs_tolerance: float = Field(default=0.01, ge=0)
    grace_s: int = Field(default=3600, ge=0)  # event-time grace for late data
    max_future_s: int = Field(default=300, ge=0)  # event time this far past receipt is not used
    offline_after_s: int = Field(default=600, ge=60)  # B8 logger offline
    hour_deadline_s: int = Field(default=1800, ge=0)  # B7 missing hour packet
    meter_offline_after_s: int = Field(default=1800, ge=60)  # C8
    c1_minutes: int = Field(default=10, ge=1)
    c2_lead_s: int = Field(default=300, ge=0)
    c3_lag_s: int = Field(default=300, ge=0)
    c5_minutes: int = Field(default=5, ge=1)
    c7_factor: float = Field(default=1.2, ge=1)  # C7: a day's level above this × baseline ...
    c7_baseline_days: int = Field(default=30, ge=1, le=366)  # ... of this many earlier days
    c7_min_days: int = Field(default=7, ge=1, le=366)  # ... once this many are learned
    furnace_period_min: int = Field(default=5, ge=1, le=60)  # A5-2 五分钟均值
    furnace_low_max_per_day: int = Field(default=5, ge=0)  # A5-2: more than this is an alarm
    producing_fraction: float = Field(default=0.5, gt=0, le=1)  # B8-6: share of samples ON
    zero_minutes: int = Field(default=60, ge=1)  # B1: zero values this long while producing
    const_minutes: int = Field(default=60, ge=1)  # B2: identical values this long
    over_range_alarm_hours: int = Field(default=3, ge=1)  # B4: hours over range for an alarm
    jump_sigma: float = Field(default=5.0, gt=0)  # B6: a jump above k σ of the last 24 h ...
    jump_relative: float = Field(default=0.5, ge=0)  # ... and above this share of their mean
    jump_min_history: int = Field(default=12, ge=2, le=24)  # ... with this many hours known
    flag_hours_warning: int = Field(default=4, ge=1)  # B9: hours of D/M/C flags (预警)
    flag_hours_alarm: int = Field(default=120, ge=1)  # B9: ... for an alarm (5 days)
    transmission_min: float = Field(default=0.9, gt=0, le=1)  # B10: effective rate per day
    o2_high: float = Field(default=19.0, gt=0, le=21)  # B8-3: O2 % this high while flowing
    incineration_min_hours: int = Field(default=1, ge=1, le=24)  # A5-1: shortest day judged
    ultra_low_share: float = Field(default=0.95, gt=0, le=1)  # A8: a month's hours within
    # B8-1: valid hourly O2 above this while flowing (the fleet reference of the outlet's
    # kind, from `nonsite replay --o2-reference`); per preset below, per outlet in its rules.
    o2_reference: float | None = Field(default=None, gt=0, lt=21)
    o2_reference_by_preset: dict[str, float] = Field(default_factory=dict)

    @field_validator("o2_reference_by_preset")
    @classmethod
    def _known_preset_references(cls, value: dict[str, float]) -> dict[str, float]:
        from rules.presets import preset_names  # noqa: PLC0415 - loads the standards table

        known = preset_names()
        for name, o2 in value.items():
            if name not in known:
                raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(known)}")
            if not 0 < o2 < 21:
                raise ValueError(f"{name}: an O2 reference is a percentage in (0, 21), got {o2}")
        return value

    # B8-4: a wet-desulphurised outlet's flue gas above this temperature (℃) while flowing;
    # None: no wet FGD (set it on the outlets that have one).
    wet_fgd_temp_max: float | None = Field(default=None, gt=0)
    # B8-7: a calibration-like plateau lasts this long, at this share of the range at least
    plateau_min_minutes: int = Field(default=3, ge=1, le=60)
    plateau_max_minutes: int = Field(default=15, ge=1, le=60)
    plateau_range_share: float = Field(default=0.4, gt=0, le=1)
    plateau_round: float = Field(default=10.0, gt=0)  # ... at a multiple of this value
    plateau_step_pct: int = Field(default=50, ge=1, le=100)  # ... with steps of this % of it
    copy_min_records: int = Field(default=6, ge=2)  # B8-8: identical series this long
    snapshot_every_s: float = Field(default=60.0, gt=0)  # rule-engine state saved this often

    @model_validator(mode="after")
    def _c7_days(self) -> RulesSection:
        if self.c7_min_days > self.c7_baseline_days:
            raise ValueError("c7_min_days is above c7_baseline_days: C7 would never be judged")
        return self


# The [rules] settings an outlet may override in its own ``[enterprises.outlets.rules]``
# table (the others are service-wide: grace, snapshots, meters' and C rules' own settings).
OUTLET_RULE_PARAMS = (
    "valid_minutes_per_hour",
    "valid_hours_per_day_gas",
    "valid_hours_per_day_water",
    "valid_flags",
    "warning_fraction",
    "hourly_warning_for_daily_limit",
    "zs_tolerance",
    "offline_after_s",
    "hour_deadline_s",
    "furnace_period_min",
    "furnace_low_max_per_day",
    "producing_fraction",
    "zero_minutes",
    "const_minutes",
    "over_range_alarm_hours",
    "jump_sigma",
    "jump_relative",
    "jump_min_history",
    "flag_hours_warning",
    "flag_hours_alarm",
    "transmission_min",
    "o2_high",
    "incineration_min_hours",
    "ultra_low_share",
    "o2_reference",
    "wet_fgd_temp_max",
    "plateau_min_minutes",
    "plateau_max_minutes",
    "plateau_range_share",
    "plateau_round",
    "plateau_step_pct",
    "copy_min_records",
)


def _optional(name: str) -> tuple[object, FieldInfo]:
    """A [rules] field as an optional override: same type and bounds, default None."""
    field = copy(RulesSection.model_fields[name])
    field.default = None
    field.default_factory = None
    return field.annotation | None, field  # type: ignore[operator]


# Per-outlet overrides of the [rules] defaults: the same names, types and bounds, built from
# RulesSection so that a setting and its override cannot drift apart.
if TYPE_CHECKING:

    class OutletRules(Section):
        pass

else:
    OutletRules = create_model(
        "OutletRules", __base__=Section, **{name: _optional(name) for name in OUTLET_RULE_PARAMS}
    )


class OutletConfig(Section):
    id: Identifier
    name: str = ""
    kind: Literal["gas", "water"]
    mn: Annotated[str, Field(min_length=1, max_length=64)]
    # The logger's PW (访问密码), required while [ingest] check_pw is on; "" for a logger that
    # sends none. Give each logger its own: check-config warns about shared and default ones.
    pw: Annotated[str, Field(max_length=64)] | None = None
    accept_modbus_crc: bool | None = None  # None: the [ingest] default
    max_segment_bytes: int | None = Field(default=None, ge=1024)
    encoding: str | None = None  # its packets' text encoding (gbk, …); None: the [ingest] one
    factors: list[Annotated[str, Field(min_length=1, max_length=16)]] = Field(default_factory=list)
    preset: str | list[str] | None = None  # industry preset(s) from the emission standards
    limits: dict[str, FactorLimits] = Field(default_factory=dict)
    minute_interval_min: int | None = Field(default=None, ge=1, le=60)
    # Yearly caps on what marks excuse; None: the industry's (incineration: 60 h / 700 h).
    marking_caps: list[MarkingCapConfig] | None = None
    flow_low: float | None = Field(default=None, gt=0)  # B8-6 废气流量异常下限值 (flow unit)
    # B8-2: O2 band of normal combustion in %; None: the industry's (incineration: 6–10).
    o2_band: tuple[float, float] | None = None
    rules: OutletRules | None = None  # this outlet's own values of [rules] settings
    # A7: the longest a marking of a type may last per occurrence, in hours; None: the
    # industry's (incineration: start-up, shutdown, fault, accident 4 h).
    marking_max_hours: dict[str, float] | None = None

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, value: str | None) -> str | None:
        return None if value is None else _text_encoding(value)

    @field_validator("marking_max_hours")
    @classmethod
    def _marking_types(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        from rules.markings import MARKING_TYPES  # noqa: PLC0415

        for name, hours in (value or {}).items():
            if name not in MARKING_TYPES:
                raise ValueError(
                    f"unknown marking type {name!r}; known: {', '.join(MARKING_TYPES)}"
                )
            if hours <= 0:
                raise ValueError(f"{name}: hours must be positive, got {hours}")
        return value

    @field_validator("o2_band")
    @classmethod
    def _o2_band_ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1] <= 21:
            raise ValueError(
                f"o2_band must be [low, high] with 0 <= low < high <= 21, got {list(value)}"
            )
        return value

    @field_validator("preset")
    @classmethod
    def _known_presets(cls, value: str | list[str] | None) -> str | list[str] | None:
        from rules.presets import preset_names  # noqa: PLC0415 - loads the standards table

        known = preset_names()
        for name in [value] if isinstance(value, str) else value or []:
            if name not in known:
                raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(known)}")
        return value

    @property
    def preset_list(self) -> tuple[str, ...]:
        if self.preset is None:
            return ()
        return (self.preset,) if isinstance(self.preset, str) else tuple(self.preset)


class MeterConfig(Section):
    id: Identifier
    name: str = ""
    role: Literal["production", "control"]
    rated_kw: float | None = Field(default=None, gt=0)
    serves: list[Identifier] = Field(default_factory=list)  # control: the production it treats
    outlets: list[Identifier] = Field(default_factory=list)  # production: where it emits
    on_fraction: float | None = Field(default=None, gt=0, le=1)
    off_fraction: float | None = Field(default=None, ge=0, le=1)
    confirm_samples: int | None = Field(default=None, ge=1, le=100)
    offline_after_s: int | None = Field(default=None, ge=60)
    c7_factor: float | None = Field(default=None, ge=1)  # C7 overrides of the [rules] ones
    c7_baseline_days: int | None = Field(default=None, ge=1, le=366)
    c7_min_days: int | None = Field(default=None, ge=1, le=366)
    # Fed by an HJ 212 logger instead of (or as well as) JSON: the logger's MN, and the code
    # in its frames: an ST=44 factor code (d20405) or a CN 2021 device code (SB1 of SB1-RS).
    mn: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    code: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")] | None = (
        None
    )

    @model_validator(mode="after")
    def _mn_with_code(self) -> MeterConfig:
        if self.mn is not None and self.code is None:
            raise ValueError(
                "mn needs code: the meter's code in that logger's frames (an ST=44 factor code "
                "such as d20405, or a device code such as SB1)"
            )
        if self.code is not None and self.mn is None:
            raise ValueError("code needs mn: the MN of the HJ 212 logger whose frames carry it")
        return self


_DAILY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class OrderConfig(Section):
    """停限产 / 应急减排 (emergency) or 错峰生产 (staggered) order for this enterprise."""

    kind: Literal["emergency", "staggered"]
    reference: str = Field(min_length=1)  # the order's document number
    start: AwareDatetime
    end: AwareDatetime
    devices: list[Identifier] = Field(min_length=1)
    daily: str | None = None  # "HH:MM-HH:MM" China time, for staggered windows

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: str | None) -> str | None:
        if value is not None and not _DAILY.match(value):
            raise ValueError(
                "must be HH:MM-HH:MM, e.g. 08:00-11:00 (may pass midnight: 22:00-06:00)"
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> OrderConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class MarkingConfig(Section):
    """A period the enterprise declared (标记): its data is not exceedance evidence."""

    outlet: Identifier
    type: str
    start: AwareDatetime
    end: AwareDatetime
    factor: str | None = None
    reason: str = ""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        from rules.markings import MARKING_TYPES  # noqa: PLC0415

        if value not in MARKING_TYPES:
            raise ValueError(f"unknown marking type {value!r}; known: {', '.join(MARKING_TYPES)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MarkingConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ChannelConfig(Section):
    """A notification destination (alerts/channels). ``kind`` decides which keys apply."""

    name: Identifier
    kind: Literal["webhook", "dingtalk", "wecom", "smtp", "mqtt"]
    url: str | None = None  # webhook, dingtalk, wecom
    secret: str | None = None  # webhook: HMAC key; dingtalk: 加签 secret
    host: str | None = None  # smtp, mqtt (mqtt: the service's broker when omitted)
    port: int | None = Field(default=None, ge=1, le=65535)
    sender: str | None = None  # smtp
    recipients: list[str] = Field(default_factory=list)  # smtp
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    topic_prefix: str = "alerts"  # mqtt
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        needs = {
            "webhook": ("url",),
            "dingtalk": ("url",),
            "wecom": ("url",),
            "smtp": ("host", "sender"),
            "mqtt": (),
        }[self.kind]
        missing = [k for k in needs if getattr(self, k) is None]
        if self.kind == "smtp" and not self.recipients:
            missing.append("recipients")
        if missing:
            raise ValueError(f"a {self.kind} channel needs {', '.join(missing)}")
        return self


class BrigadeConfig(Section):
    """An enforcement brigade (执法大队) and where its work orders are sent."""

    id: Identifier
    name: str = Field(min_length=1)
    notify: list[Identifier] = Field(default_factory=list)  # channel names
    # 执法检查人员: the 双随机 draws pick an inspection's inspectors among them
    inspectors: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list
    )


Tier = Literal["warning", "alarm"]


class AlertsSection(Section):
    """Deadlines, escalation and notification routing ([I] defaults of the catalogue §D2)."""

    explain_hours: float = Field(default=24.0, gt=0)
    feedback_working_days: int = Field(default=3, ge=1, le=60)
    recheck_days: int = Field(default=30, ge=1, le=365)
    recheck_method: Literal["off_site", "on_site"] = "off_site"  # the active 回头看's
    rectify_working_days: int = Field(default=15, ge=1, le=365)  # 整改 deadline
    rectify_check_days: int = Field(default=7, ge=1, le=90)  # off-site 整改核查: days clean
    major_fine_yuan: float = Field(default=100_000.0, gt=0)  # from this fine: 法制审核
    escalate_unexplained: int = Field(default=3, ge=1)
    escalate_window_days: int = Field(default=30, ge=1)
    flap_window_min: int = Field(default=180, ge=0)
    # Tiers whose case a clear resolves before dispatch; an alarm stays to be dispatched.
    resolve_on_clear: list[Tier] = Field(default_factory=lambda: list[Tier](["warning"]))
    evidence_trail: int = Field(default=20, ge=1, le=1000)
    holidays: list[date] = Field(default_factory=list)  # 法定节假日 (weekdays off)
    workdays: list[date] = Field(default_factory=list)  # 调休上班 (weekend days worked)
    dashboard_url: str = "http://127.0.0.1:8080"
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=3600.0, gt=0)
    every_change: list[Identifier] = Field(default_factory=list)  # e.g. the MQTT channel
    supervisors: list[Identifier] = Field(default_factory=list)
    monitors: list[Identifier] = Field(default_factory=list)
    channels: list[ChannelConfig] = Field(default_factory=list)
    # Clues (alerts.clues): located within this radius of an enterprise, merged into an open
    # case seen within this many hours of the clue's time; the monitoring data recorded with
    # a clue span from hours before to hours after it.
    clue_radius_m: float = Field(default=500.0, gt=0, le=20_000)
    clue_window_h: float = Field(default=12.0, gt=0, le=24 * 30)
    clue_data_before_h: float = Field(default=6.0, ge=0, le=72)
    clue_data_after_h: float = Field(default=2.0, ge=0, le=72)


SupervisionClass = Literal["key", "special", "general"]  # 重点 / 特殊 / 一般 监管单位
RiskColor = Literal["green", "yellow", "red"]  # 绿码 / 黄码 / 红码
RISK_KINDS = (
    "violation", "exceedance_alarm", "exceedance_warning", "fraud", "data_quality", "power",
    "unexplained", "rectification_overdue", "rectification_failed", "clue", "transmission",
)  # fmt: skip


class RiskSection(Section):
    """The enterprise risk rating (环保码, alerts.risk) [I]: points per item on the record of
    the last ``window_days`` (per percentage point short, for the effective transmission rate
    of the last ``transmission_days`` below its target), per supervision class, and the scores
    from which an enterprise is 黄码 and 红码."""

    window_days: int = Field(default=365, ge=7, le=3 * 365)
    transmission_days: int = Field(default=30, ge=1, le=365)
    transmission_target: float = Field(default=0.90, ge=0, le=1)
    yellow_at: float = Field(default=20.0, gt=0)
    red_at: float = Field(default=60.0, gt=0)
    points: dict[str, float] = Field(default_factory=dict)  # a kind's points, over the defaults
    class_points: dict[SupervisionClass, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RiskSection:
        unknown = sorted(set(self.points) - set(RISK_KINDS))
        if unknown:
            raise ValueError(
                f"points: unknown kind {', '.join(unknown)} (known: {', '.join(RISK_KINDS)})"
            )
        if any(v < 0 for v in [*self.points.values(), *self.class_points.values()]):
            raise ValueError("points must not be negative")
        if self.red_at <= self.yellow_at:
            raise ValueError(f"red_at ({self.red_at}) must be above yellow_at ({self.yellow_at})")
        return self


class PositiveListSection(Section):
    """The positive list's entry criteria (正面清单, alerts.positive_list) [I]: checked daily
    after the risk ratings; an enterprise meeting all of them is proposed for entry, a member
    failing one for exit (a supervisor decides either)."""

    propose: bool = True  # False: only supervisors propose
    green_months: int = Field(default=6, ge=1, le=36)  # rated 绿码 every day this long
    violation_free_days: int = Field(default=365, ge=0, le=3 * 365)
    min_transmission: float = Field(default=0.95, ge=0, le=1)  # effective transmission rate
    repropose_after_days: int = Field(default=30, ge=0, le=365)  # after a rejection [I]
    classes: list[SupervisionClass] = Field(
        default_factory=lambda: list[SupervisionClass](["key", "special", "general"])
    )  # the supervision classes that may enter


class InspectionsSection(Section):
    """双随机 draws (alerts.draws) [I]: each supervision class's share of its members drawn per
    period (rounded up), the rating's weight within a class, whether positive-list members
    stay out of on-site draws, and how many inspectors go on each inspection."""

    shares: dict[SupervisionClass, float] = Field(
        default_factory=lambda: dict[SupervisionClass, float](
            {"key": 0.25, "special": 0.25, "general": 0.10}
        )
    )
    color_weights: dict[RiskColor, float] = Field(
        default_factory=lambda: dict[RiskColor, float]({"green": 1.0, "yellow": 2.0, "red": 4.0})
    )
    exclude_positive_list: bool = True
    inspectors_each: int = Field(default=2, ge=1, le=10)

    @model_validator(mode="after")
    def _sane(self) -> InspectionsSection:
        bad = {k: v for k, v in self.shares.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"shares must be between 0 and 1: {bad}")
        if any(w <= 0 for w in self.color_weights.values()):
            raise ValueError("color_weights must be above 0")
        return self


class PublicSection(Section):
    """The public disclosure page (公示, no login): the penalty decisions in effect (which
    types, for how long), the positive list and each enterprise's online status."""

    enabled: bool = True
    authority: str = Field(default="生态环境主管部门", min_length=1, max_length=100)  # 决定机关
    decision_types: list[Literal["no_penalty", "order_correction", "fine", "seizure"]] = Field(
        default_factory=lambda: list[Literal["no_penalty", "order_correction", "fine", "seizure"]](
            ["order_correction", "fine", "seizure"]
        )
    )
    keep_days: int = Field(default=3 * 365, ge=30, le=10 * 365)  # 公示期
    deadline_working_days: int = Field(default=7, ge=1, le=30)  # 作出决定之日起公示的期限


class EnterpriseConfig(Section):
    id: Identifier
    name: str = Field(min_length=1)
    region: str = ""  # the township (镇街) or district: a township user's area
    industry: str = ""
    size: Literal["large", "medium", "small", "micro", ""] = ""  # 规模: 大/中/小/微型
    # 监管类别 (the inspection object library's): 重点 / 特殊 / 一般 监管单位
    supervision_class: SupervisionClass = "general"
    longitude: float | None = Field(default=None, ge=73, le=136)  # China's extent, WGS-84
    latitude: float | None = Field(default=None, ge=3, le=54)
    positive_list: bool = False  # 正面清单: supervised off-site first
    brigade: Identifier | None = None  # the brigade that takes its work orders
    notify: list[Identifier] = Field(default_factory=list)  # channels for its reminders
    outlets: list[OutletConfig] = Field(default_factory=list)
    meters: list[MeterConfig] = Field(default_factory=list)
    orders: list[OrderConfig] = Field(default_factory=list)
    markings: list[MarkingConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _located(self) -> EnterpriseConfig:
        if (self.longitude is None) != (self.latitude is None):
            raise ValueError("give both longitude and latitude, or neither")
        return self


class GatewayConfig(Section):
    """A sender that legitimately carries several loggers or meters (a park's data gateway, a
    utility's power platform): it publishes on its own topic (hj212/<id>, power/<id>) and may
    speak only for the MNs and meters listed here."""

    id: Identifier
    name: str = ""
    mns: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    meters: list[Identifier] = Field(default_factory=list)

    @model_validator(mode="after")
    def _speaks_for_someone(self) -> GatewayConfig:
        if not self.mns and not self.meters:
            raise ValueError("a gateway lists the mns and/or meters it may speak for")
        return self


class Config(Section):
    service: ServiceSection = ServiceSection()
    mqtt: MqttSection = MqttSection()
    ingest: IngestSection = IngestSection()
    tcp: TcpSection = TcpSection()
    commands: CommandsSection = CommandsSection()
    archive: ArchiveSection = ArchiveSection()
    database: DatabaseSection = DatabaseSection()
    cluster: ClusterSection = ClusterSection()
    rules: RulesSection = RulesSection()
    alerts: AlertsSection = AlertsSection()
    risk: RiskSection = RiskSection()
    positive_list: PositiveListSection = PositiveListSection()
    inspections: InspectionsSection = InspectionsSection()
    public: PublicSection = PublicSection()
    brigades: list[BrigadeConfig] = Field(default_factory=list)
    gateways: list[GatewayConfig] = Field(default_factory=list)
    enterprises: list[EnterpriseConfig] = Field(default_factory=list)

    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.service.data_dir / DATABASE_FILE).as_posix()}"
