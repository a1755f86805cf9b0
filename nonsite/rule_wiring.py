"""Configuration → rule parameters (presets merged with per-factor overrides), and the one
factory of the rule engines (``rule_setup``): the service, replay and backtest, and the
dashboard's series all judge with the same parameters and markings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection

from ingest.hj212.codes import pollutant_table
from nonsite.config.model import (
    OUTLET_RULE_PARAMS,
    Config,
    EnterpriseConfig,
    FactorLimits,
    OutletConfig,
)
from rules.batch import BatchEngine
from rules.markings import INCINERATION_CAPS, Marking, MarkingCap
from rules.params import FactorParams, OutletParams, Thresholds
from rules.power_params import EnterprisePowerParams, MeterParams, Order
from rules.presets import PresetFactor, preset_rule_params, presets
from rules.store import declared_as_markings, list_declared_markings
from rules.stream import StreamEngine


def _factor(code: str, base: PresetFactor | None, override: FactorLimits | None) -> FactorParams:
    thresholds = base.thresholds if base else Thresholds()
    reference_o2 = base.reference_o2 if base else None
    unit = base.unit if base else ""
    source = base.source if base else ""
    range_max = plausible_min = plausible_max = None
    if override is not None:
        thresholds = thresholds.merged(
            Thresholds(
                hour_alarm=override.hour_alarm,
                hour_warning=override.hour_warning,
                day_alarm=override.day_alarm,
                day_warning=override.day_warning,
                value_high=override.value_high,
                value_low=override.value_low,
                band_low=override.band_low,
                band_high=override.band_high,
                band_high_2=override.band_high_2,
                ultra_low=override.ultra_low,
            )
        )
        if override.reference_o2 is not None:
            reference_o2 = override.reference_o2
        if override.no_o2_conversion:
            reference_o2 = None
        unit = override.unit or unit
        range_max = override.range_max
        plausible_min, plausible_max = override.plausible_min, override.plausible_max
        source = f"{source} + configuration" if source else "configuration"
    if not unit:
        known = pollutant_table().get(code)
        unit = known.unit if known else ""
    return FactorParams(
        factor=code,
        unit=unit,
        thresholds=thresholds,
        reference_o2=reference_o2,
        range_max=range_max,
        plausible_min=plausible_min,
        plausible_max=plausible_max,
        source=source,
    )


def outlet_params(
    config: Config, enterprise: EnterpriseConfig, outlet: OutletConfig
) -> OutletParams:
    base: dict[str, PresetFactor] = {}
    for name in outlet.preset_list:  # later presets override earlier ones, value by value
        for code, add in presets()[name].factors.items():
            old = base.get(code)
            base[code] = (
                add
                if old is None
                else PresetFactor(
                    code,
                    add.unit or old.unit,
                    old.thresholds.merged(add.thresholds),
                    add.reference_o2 if add.reference_o2 is not None else old.reference_o2,
                    f"{old.source} + {add.source}",
                )
            )
    codes = list(outlet.factors) or list(base)
    codes += [c for c in outlet.limits if c not in codes]
    incineration = any(presets()[n].industry == "msw_incineration" for n in outlet.preset_list)
    if outlet.marking_caps is not None:
        caps = tuple(MarkingCap(tuple(c.types), c.hours) for c in outlet.marking_caps)
    else:
        caps = INCINERATION_CAPS if incineration else ()
    r = config.rules
    interval = outlet.minute_interval_min or r.minute_interval_min
    params = OutletParams(
        enterprise_id=enterprise.id,
        outlet_id=outlet.id,
        kind=outlet.kind,
        factors={c: _factor(c, base.get(c), outlet.limits.get(c)) for c in codes},
        preset=outlet.preset_list,
        minute_interval_min=interval,
        incineration=incineration,
        marking_caps=caps,
        flow_low=outlet.flow_low,
    )
    return replace(params, **rule_values(config, outlet))


def rule_values(config: Config, outlet: OutletConfig) -> dict[str, Any]:
    """The outlet's tunable rule parameters (OutletParams names): the [rules] defaults, then
    its industry preset's, then the values [rules] sets explicitly, then its own."""
    r = config.rules
    values: dict[str, Any] = {_PARAM_NAMES.get(n, n): getattr(r, n) for n in OUTLET_RULE_PARAMS}
    values |= preset_rule_params(outlet.preset_list)
    by_preset = [
        r.o2_reference_by_preset[n] for n in outlet.preset_list if n in r.o2_reference_by_preset
    ]
    if by_preset:  # the fleet reference of its kind (the last of its presets that has one)
        values["o2_reference"] = by_preset[-1]
    values |= {_PARAM_NAMES.get(n, n): getattr(r, n) for n in r.model_fields_set & _OUTLET_SET}
    if outlet.rules is not None:
        own = outlet.rules.model_dump(exclude_none=True)
        values |= {_PARAM_NAMES.get(n, n): v for n, v in own.items()}
    if outlet.o2_band is not None:
        values["o2_band"] = outlet.o2_band
    if outlet.marking_max_hours is not None:
        values["marking_max_hours"] = tuple(sorted(outlet.marking_max_hours.items()))
    values["valid_flags"] = frozenset(values["valid_flags"])
    values["furnace_period_s"] = values["furnace_period_s"] * 60  # configured in minutes
    return values


# Configuration names that differ from the rule parameters' (rules/params.py).
_PARAM_NAMES = {"furnace_period_min": "furnace_period_s"}
_OUTLET_SET = frozenset(OUTLET_RULE_PARAMS)


def build_outlet_params(config: Config) -> dict[tuple[str, str], OutletParams]:
    """Rule parameters of every outlet, keyed by (enterprise id, outlet id)."""
    return {
        (e.id, o.id): outlet_params(config, e, o) for e in config.enterprises for o in e.outlets
    }


def build_power_params(config: Config) -> dict[str, EnterprisePowerParams]:
    """Power-rule parameters of every enterprise with meters."""
    r = config.rules
    out: dict[str, EnterprisePowerParams] = {}
    for e in config.enterprises:
        if not e.meters:
            continue
        meters = {
            m.id: MeterParams(
                enterprise_id=e.id,
                meter_id=m.id,
                role=m.role,
                rated_kw=m.rated_kw,
                on_fraction=m.on_fraction if m.on_fraction is not None else 0.10,
                off_fraction=m.off_fraction if m.off_fraction is not None else 0.05,
                confirm_samples=m.confirm_samples or 3,
                serves=tuple(m.serves),
                outlets=tuple(m.outlets),
                offline_after_s=m.offline_after_s or r.meter_offline_after_s,
                c7_factor=m.c7_factor if m.c7_factor is not None else r.c7_factor,
                c7_baseline_days=m.c7_baseline_days or r.c7_baseline_days,
                c7_min_days=m.c7_min_days or r.c7_min_days,
            )
            for m in e.meters
        }
        orders = tuple(
            Order(
                kind=o.kind,
                start=int(o.start.timestamp()),
                end=int(o.end.timestamp()),
                devices=tuple(o.devices),
                reference=o.reference,
                daily=_daily(o.daily),
            )
            for o in e.orders
        )
        out[e.id] = EnterprisePowerParams(
            e.id,
            meters,
            orders,
            c1_minutes=r.c1_minutes,
            c2_lead_s=r.c2_lead_s,
            c3_lag_s=r.c3_lag_s,
            c5_minutes=r.c5_minutes,
        )
    return out


def _daily(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    start, end = text.split("-")
    return _seconds(start), _seconds(end)


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def build_markings(config: Config) -> list[Marking]:
    return [
        Marking(
            enterprise_id=e.id,
            outlet_id=m.outlet,
            type=m.type,
            start=int(m.start.timestamp()),
            end=int(m.end.timestamp()),
            factor=m.factor,
        )
        for e in config.enterprises
        for m in e.markings
    ]


_Engine = TypeVar("_Engine", StreamEngine, BatchEngine)


@dataclass(frozen=True, slots=True)
class RuleSetup:
    """What a rule engine is built from: the configuration's parameters and markings, and the
    markings declared online (``rules.store``), which excuse data as configured ones do."""

    params: dict[tuple[str, str], OutletParams]
    power: dict[str, EnterprisePowerParams]
    configured: tuple[Marking, ...]
    declared: tuple[Marking, ...]  # declared online: ``len`` is the count taken up
    grace_s: int
    max_future_s: int

    @property
    def markings(self) -> list[Marking]:
        return [*self.configured, *self.declared]

    def with_declared(self, rows: Sequence[dict[str, Any]]) -> RuleSetup:
        """The same configuration with these declared markings (rows of
        ``rules.store.list_declared_markings``) instead of those it had."""
        return replace(self, declared=tuple(declared_as_markings(rows)))

    def outlet(self, key: tuple[str, str]) -> RuleSetup:
        """Only the outlet ``key`` (its parameters and markings; no meters): to explain its
        hours without building an engine for the whole fleet."""
        return replace(
            self,
            params={key: self.params[key]},
            power={},
            configured=tuple(m for m in self.configured if (m.enterprise_id, m.outlet_id) == key),
            declared=tuple(m for m in self.declared if (m.enterprise_id, m.outlet_id) == key),
        )

    def stream_engine(self) -> StreamEngine:
        return self._engine(StreamEngine)

    def batch_engine(self) -> BatchEngine:
        return self._engine(BatchEngine)

    def _engine(self, kind: type[_Engine]) -> _Engine:
        return kind(
            self.params,
            power=self.power,
            markings=self.markings,
            grace_s=self.grace_s,
            max_future_s=self.max_future_s,
        )


def rule_setup(config: Config, declared: Connection | Sequence[dict[str, Any]] = ()) -> RuleSetup:
    """The rule engines' inputs: the configuration, and the markings declared online, read on
    ``declared`` when it is a database connection (else the rows themselves)."""
    rows = list_declared_markings(declared) if isinstance(declared, Connection) else declared
    r = config.rules
    return RuleSetup(
        params=build_outlet_params(config),
        power=build_power_params(config),
        configured=tuple(build_markings(config)),
        declared=(),
        grace_s=r.grace_s,
        max_future_s=r.max_future_s,
    ).with_declared(rows)
