"""Turn the configuration into the stages' own settings objects."""

from __future__ import annotations

import ssl
from dataclasses import replace
from functools import partial
from pathlib import Path

from ingest.archive_topics import TopicArchive
from ingest.commands.auto import AutoCommands, AutoPolicy
from ingest.commands.store import ClockPolicy
from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.topics import PayloadKind, TopicRouter, shared, unshared
from ingest.processor import IngestPolicy
from ingest.registry import Gateway, Meter, Outlet, Registry
from ingest.tcp.settings import GatewaySettings
from nonsite.config.model import Config
from nonsite.config.mqtt_url import BrokerUrl, parse_broker_url

# nonsite gateway's address when [tcp] listen is empty: loggers connect from the field, so all
# interfaces (the documented port; docs/loggers.md).
DEFAULT_TCP_LISTEN = "0.0.0.0:9212"


def build_registry(config: Config, *, trusted_sender: str | None = None) -> Registry:
    """``trusted_sender``: a sender that may speak for every logger and meter (a replay of the
    operator's own files, whose lines name no sender)."""
    outlets = [
        Outlet(
            enterprise_id=ent.id,
            outlet_id=o.id,
            mn=o.mn,
            pw=o.pw,
            kind=o.kind,
            name=o.name,
            accept_modbus_crc=(
                config.ingest.accept_modbus_crc
                if o.accept_modbus_crc is None
                else o.accept_modbus_crc
            ),
            max_segment_bytes=o.max_segment_bytes or config.ingest.max_segment_bytes,
            encoding=o.encoding or config.ingest.encoding,
        )
        for ent in config.enterprises
        for o in ent.outlets
    ]
    meters = [
        Meter(
            enterprise_id=ent.id,
            meter_id=m.id,
            role=m.role,
            name=m.name,
            rated_kw=m.rated_kw,
            mn=m.mn,
            code=m.code,
        )
        for ent in config.enterprises
        for m in ent.meters
    ]
    gateways = [
        Gateway(g.id, mns=frozenset(g.mns), meters=frozenset(g.meters)) for g in config.gateways
    ]
    if trusted_sender is not None:
        everyone = frozenset(o.mn for o in outlets) | frozenset(m.mn for m in meters if m.mn)
        gateways.append(Gateway(trusted_sender, everyone, frozenset(m.meter_id for m in meters)))
    return Registry(
        outlets,
        meters,
        accept_modbus_crc=config.ingest.accept_modbus_crc,
        max_segment_bytes=config.ingest.max_segment_bytes,
        encoding=config.ingest.encoding,
        gateways=gateways,
    )


def build_router(config: Config) -> TopicRouter:
    routes: list[tuple[PayloadKind, str]] = [(s.kind, s.filter) for s in config.mqtt.subscriptions]
    return TopicRouter(routes)


def build_policy(config: Config) -> IngestPolicy:
    return IngestPolicy(
        max_payload_bytes=config.ingest.max_payload_bytes,
        check_pw=config.ingest.check_pw,
        reply_topic=config.mqtt.reply_topic,
    )


def build_topic_archive(config: Config, path: Path, *, build_index: bool = True) -> TopicArchive:
    """The archive read by topic (charts, data quality), decoding and attributing as ingest
    does."""
    return TopicArchive(
        path,
        build_registry(config),
        partial(build_router, config),
        build_policy(config),
        build_index=build_index,
    )


def build_mqtt_settings(
    config: Config, broker: BrokerUrl | None = None, *, client_id: str | None = None
) -> MqttSettings:
    """Settings for the configured broker, or for ``broker`` (the embedded one, MQTT 3.1.1)."""
    m = config.mqtt
    url = broker or parse_broker_url(m.url)
    return MqttSettings(
        host=url.host,
        port=url.port,
        client_id=client_id or m.client_id,
        subscriptions=tuple((shared(s.filter, m.shared_group), s.qos) for s in m.subscriptions),
        protocol="3.1.1" if broker is not None else m.protocol,
        username=url.username,
        password=url.password,
        tls=url.tls,
        ca_file=m.ca_file,
        cert_file=m.cert_file,
        key_file=m.key_file,
        tls_insecure=m.tls_insecure,
        session_expiry_s=m.session_expiry_s,
        keepalive_s=m.keepalive_s,
        receive_maximum=m.receive_maximum,
        reconnect_min_s=m.reconnect_min_s,
        reconnect_max_s=m.reconnect_max_s,
    )


def build_gateway_settings(config: Config) -> GatewaySettings:
    """The TCP gateway's settings: it publishes where the ingest stage subscribes (the first
    HJ 212 filter, its "+" the connection's sender) and takes commands from the reply topic."""
    t = config.tcp
    hj212 = next((s.filter for s in config.mqtt.subscriptions if s.kind == "hj212"), "hj212/+")
    levels = unshared(hj212).split("/")
    data_topic = "/".join("{sender}" if level == "+" else level for level in levels)
    reply = config.mqtt.reply_topic
    tls = None
    if t.tls_cert_file is not None and t.tls_key_file is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(t.tls_cert_file, t.tls_key_file)
    host, _, port = (t.listen or DEFAULT_TCP_LISTEN).rpartition(":")
    return GatewaySettings(
        host=host.strip("[]"),
        port=int(port),
        data_topic=data_topic,
        command_filter=reply.replace("{mn}", "+") if reply else "",
        check_pw=config.ingest.check_pw,
        tls=tls,
        idle_timeout_s=t.idle_timeout_s,
        packet_timeout_s=t.packet_timeout_s,
        max_connections=t.max_connections,
        max_connections_per_address=t.max_connections_per_address,
        max_unacknowledged=t.max_unacknowledged,
        ack_timeout_s=t.ack_timeout_s,
    )


def build_gateway_mqtt_settings(config: Config, broker: BrokerUrl | None = None) -> MqttSettings:
    """The gateway's broker connection: its own login when [tcp] mqtt_url is set."""
    if broker is not None:  # the embedded broker (MQTT 3.1.1 only)
        return build_mqtt_settings(config, broker, client_id=config.tcp.client_id)
    settings = build_mqtt_settings(config, client_id=config.tcp.client_id)
    if not config.tcp.mqtt_url:
        return settings
    own = parse_broker_url(config.tcp.mqtt_url)
    # Its own login on the configured broker, in the configured protocol: MQTT 5, so that a
    # publish the broker's ACL refuses is said to be refused (and no 9014 goes out).
    return replace(
        settings,
        host=own.host,
        port=own.port,
        username=own.username,
        password=own.password,
        tls=own.tls,
    )


def build_auto_commands(config: Config) -> AutoCommands:
    c = config.commands
    return AutoCommands(
        AutoPolicy(
            recall=c.recall,
            recall_per_hour=c.recall_per_hour,
            recall_repeat_h=c.recall_repeat_h,
            time_check_every_h=c.time_check_every_h,
        ),
        ClockPolicy(tolerance_s=c.clock_tolerance_s),
    )
