"""The alert stage built from the configuration: policy, routes, channels, the case book."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from alerts.calendar import WorkingCalendar
from alerts.cases import CaseBook
from alerts.channels.base import Channel
from alerts.channels.factory import build_channel
from alerts.notify import Notifier, Routes
from alerts.outbox import Dispatcher, OutboxMetrics
from alerts.policy import AlertPolicy, ClueMatching, EnterpriseInfo
from alerts.status import enterprise_status
from nonsite.config.model import ChannelConfig, Config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db_health import DatabaseHealth, Retrying, is_unavailable


def build_alert_policy(config: Config) -> AlertPolicy:
    a = config.alerts
    return AlertPolicy(
        explain_hours=a.explain_hours,
        feedback_working_days=a.feedback_working_days,
        recheck_days=a.recheck_days,
        recheck_method=a.recheck_method,
        rectify_working_days=a.rectify_working_days,
        rectify_check_days=a.rectify_check_days,
        major_fine_yuan=a.major_fine_yuan,
        escalate_unexplained=a.escalate_unexplained,
        escalate_window_days=a.escalate_window_days,
        flap_window_s=a.flap_window_min * 60,
        resolve_on_clear=frozenset(a.resolve_on_clear),
        evidence_trail=a.evidence_trail,
        calendar=WorkingCalendar.of(a.holidays, a.workdays),
        enterprises={
            e.id: EnterpriseInfo(
                e.id,
                e.name,
                positive_list=e.positive_list,
                brigade=e.brigade,
                region=e.region,
                industry=e.industry,
                source_names={
                    **{o.id: o.name for o in e.outlets if o.name},
                    **{m.id: m.name for m in e.meters if m.name},
                },
                location=(
                    (e.longitude, e.latitude)
                    if e.longitude is not None and e.latitude is not None
                    else None
                ),
            )
            for e in config.enterprises
        },
        dashboard_url=a.dashboard_url,
        clues=ClueMatching(
            radius_m=a.clue_radius_m,
            window_h=a.clue_window_h,
            data_before_h=a.clue_data_before_h,
            data_after_h=a.clue_data_after_h,
        ),
    )


def build_routes(config: Config) -> Routes:
    a = config.alerts
    return Routes(
        every_change=tuple(a.every_change),
        supervisors=tuple(a.supervisors),
        monitors=tuple(a.monitors),
        enterprises={e.id: tuple(e.notify) for e in config.enterprises if e.notify},
        brigades={b.id: tuple(b.notify) for b in config.brigades},
    )


def build_case_book(config: Config) -> CaseBook:
    policy = build_alert_policy(config)
    return CaseBook(policy, Notifier(build_routes(config), policy))


def channel_spec(channel: ChannelConfig, config: Config) -> dict[str, Any]:
    """The channel's constructor arguments; an MQTT channel without a host publishes to the
    service's own broker."""
    spec: dict[str, Any] = {
        "name": channel.name,
        "kind": channel.kind,
        "timeout_s": channel.timeout_s,
    }
    if channel.kind in ("webhook", "dingtalk"):
        spec |= {"url": channel.url}
        if channel.secret:
            spec["secret"] = channel.secret
    elif channel.kind == "wecom":
        spec["url"] = channel.url
    elif channel.kind == "smtp":
        spec |= {
            "host": channel.host,
            "port": channel.port or 25,
            "sender": channel.sender,
            "recipients": list(channel.recipients),
            "starttls": channel.starttls,
        }
        if channel.username:
            spec |= {"username": channel.username, "password": channel.password}
    else:
        spec["topic_prefix"] = channel.topic_prefix
        if channel.host:
            spec |= {"host": channel.host, "port": channel.port or 1883}
            if channel.username:
                spec |= {"username": channel.username, "password": channel.password}
        else:
            if not config.mqtt.url:  # the service sets it to its embedded broker's address
                raise ValueError(
                    f"channel {channel.name!r}: an mqtt channel without a host needs the "
                    "service's broker URL"
                )
            broker = parse_broker_url(config.mqtt.url)
            spec |= {"host": broker.host, "port": broker.port, "tls": broker.tls}
            if broker.username:
                spec |= {"username": broker.username, "password": broker.password}
        spec["client_id"] = f"{config.mqtt.client_id}-alerts-{channel.name}"[:64]
    return spec


def build_channels(config: Config) -> dict[str, Channel]:
    return {c.name: build_channel(channel_spec(c, config)) for c in config.alerts.channels}


def build_dispatcher(
    config: Config, db: Engine, registry: CollectorRegistry, health: DatabaseHealth
) -> Dispatcher:
    """The outbox dispatcher of the pipeline process. Its threads share the process's view of
    the database (thread-safe): what they meet is said once, and they wait while the batches
    (which keep trying) find it away. A bug in one of its loops: its traceback once per error.
    """
    a = config.alerts
    return Dispatcher(
        db,
        build_channels(config),
        max_attempts=a.max_attempts,
        retry_base_s=a.retry_base_s,
        retry_max_s=a.retry_max_s,
        status_of=enterprise_status,
        metrics=OutboxMetrics(registry),
        health=health,
        is_unavailable=is_unavailable,
        retrying=lambda what: Retrying(
            logging.getLogger("alerts.outbox"),
            lost=f"{what} failed",
            back=f"{what} works again",
            traceback=True,
        ),
    )
