"""Configuration → rule parameters (presets merged with per-factor overrides)."""

from __future__ import annotations

from ingest.hj212.codes import pollutant_table
from nonsite.config.model import Config, EnterpriseConfig, FactorLimits, OutletConfig
from rules.params import FactorParams, OutletParams, Thresholds
from rules.presets import PresetFactor, presets


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
    r = config.rules
    return OutletParams(
        enterprise_id=enterprise.id,
        outlet_id=outlet.id,
        kind=outlet.kind,
        factors={c: _factor(c, base.get(c), outlet.limits.get(c)) for c in codes},
        preset=outlet.preset_list,
        minute_interval_min=outlet.minute_interval_min or r.minute_interval_min,
        valid_minutes_per_hour=r.valid_minutes_per_hour,
        valid_hours_per_day_gas=r.valid_hours_per_day_gas,
        valid_hours_per_day_water=r.valid_hours_per_day_water,
        valid_flags=frozenset(r.valid_flags),
        warning_fraction=r.warning_fraction,
        hourly_warning_for_daily_limit=r.hourly_warning_for_daily_limit,
        zs_tolerance=r.zs_tolerance,
    )


def build_outlet_params(config: Config) -> dict[tuple[str, str], OutletParams]:
    """Rule parameters of every outlet, keyed by (enterprise id, outlet id)."""
    return {
        (e.id, o.id): outlet_params(config, e, o) for e in config.enterprises for o in e.outlets
    }
