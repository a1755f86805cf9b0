"""Turn the configuration into the stages' own settings objects."""

from __future__ import annotations

from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.topics import PayloadKind, TopicRouter, shared
from ingest.processor import IngestPolicy
from ingest.registry import Gateway, Meter, Outlet, Registry
from nonsite.config.model import Config
from nonsite.config.mqtt_url import BrokerUrl, parse_broker_url


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


def build_mqtt_settings(config: Config, broker: BrokerUrl | None = None) -> MqttSettings:
    """Settings for the configured broker, or for ``broker`` (the embedded one, MQTT 3.1.1)."""
    m = config.mqtt
    url = broker or parse_broker_url(m.url)
    return MqttSettings(
        host=url.host,
        port=url.port,
        client_id=m.client_id,
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
