"""The fleet's risk ratings (alerts.risk), made from the database and the configuration: daily
by the service's housekeeping (a cluster's worker that owns partition 0), and on demand.

An enterprise's inputs: its record's items (``alerts.risk_record``) over the window, the
effective transmission rate of its last whole days (the month report's count of the kept
days, ``nonsite.web.month_report.period_figures``) and its supervision class.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from sqlalchemy import Engine

from alerts.risk import Rating, RiskInputs, RiskWeights, rate
from alerts.risk_record import keep, rated_on, record_items, window_start
from ingest.china_time import CHINA_TZ
from nonsite.config.model import Config
from nonsite.rule_wiring import rule_setup
from nonsite.web.month_report import first_kept_days, period_figures

log = logging.getLogger(__name__)


def weights_of(config: Config) -> RiskWeights:
    r = config.risk
    defaults = RiskWeights()
    return RiskWeights(
        window_days=r.window_days,
        transmission_days=r.transmission_days,
        transmission_target=r.transmission_target,
        yellow_at=r.yellow_at,
        red_at=r.red_at,
        points={**defaults.points, **r.points},
        class_points={**defaults.class_points, **{str(k): v for k, v in r.class_points.items()}},
    )


def fleet_inputs(
    db: Engine, config: Config, day: date, enterprises: Iterable[str] | None = None
) -> dict[str, RiskInputs]:
    """Each enterprise's inputs for its rating on ``day`` (China), in configuration order."""
    weights = weights_of(config)
    wanted = None if enterprises is None else set(enterprises)
    chosen = [e for e in config.enterprises if wanted is None or e.id in wanted]
    until = datetime.combine(day + timedelta(days=1), time(), CHINA_TZ)
    with db.connect() as conn:
        items = record_items(conn, window_start(day, weights), until, [e.id for e in chosen])
        rules = rule_setup(config, conn)  # with the 停产 declared online: nothing due then
    # The effective transmission rate of the last whole days before the rating's day, from
    # the day the service first held the enterprise's data within the window: the days
    # before it was connected owed nothing to this service (none held: no figure).
    end = int(datetime.combine(day, time(), CHINA_TZ).timestamp())
    start = end - weights.transmission_days * 86_400
    held = first_kept_days(db, int(window_start(day, weights).timestamp()), [e.id for e in chosen])
    figures = period_figures(db, config, rules, start, end, held)
    return {
        e.id: RiskInputs(
            e.id,
            tuple(items.get(e.id, ())),
            figures[e.id].effective_rate if e.id in figures else None,
            e.supervision_class,
        )
        for e in chosen
    }


def rate_fleet(
    db: Engine,
    config: Config,
    now: datetime,
    *,
    trigger: str,
    enterprises: Iterable[str] | None = None,
) -> list[Rating]:
    """Rate the enterprises (all by default) on ``now``'s China day, and keep the ratings."""
    day = now.astimezone(CHINA_TZ).date()
    weights = weights_of(config)
    ratings = [
        rate(inputs, day, weights) for inputs in fleet_inputs(db, config, day, enterprises).values()
    ]
    with db.begin() as conn:
        for rating in ratings:
            keep(conn, rating, now, trigger)
    return ratings


def rate_if_due(db: Engine, config: Config, now: datetime) -> int:
    """The daily ratings: the enterprises not rated yet on ``now``'s China day. Returns how
    many were rated."""
    day = now.astimezone(CHINA_TZ).date()
    with db.connect() as conn:
        done = rated_on(conn, day)
    missing = [e.id for e in config.enterprises if e.id not in done]
    if not missing:
        return 0
    rated = rate_fleet(db, config, now, trigger="daily", enterprises=missing)
    log.info("risk ratings of %s: %d enterprises", day.isoformat(), len(rated))
    return len(rated)


__all__ = ["fleet_inputs", "rate_fleet", "rate_if_due", "weights_of"]
