"""Warnings about a valid configuration that weakens what the service can prove.

``nonsite check-config`` prints them and ``nonsite serve`` logs them at start; none stops the
service, because each can be a deliberate, temporary state of a real fleet (a logger whose
PW is not yet known, a vendor's default still set on site).
"""

from __future__ import annotations

from collections import defaultdict

from nonsite.config.load import ConfigIssue
from nonsite.config.model import Config

# The factory default PW of most data loggers (HJ 212 leaves it to the platform): anyone who
# has read a logger's manual knows it.
DEFAULT_PASSWORDS = frozenset({"123456"})


def config_warnings(config: Config) -> list[ConfigIssue]:
    return _gateway_login(config) + _passwords(config) + _nats_login(config)


def _nats_login(config: Config) -> list[ConfigIssue]:
    """A cluster node without a NATS login: the servers it reaches take anyone, who could write
    frames into the stream in any enterprise's name (deploy/nats/nats-auth.conf)."""
    if config.cluster.nats and not config.cluster.nats_user:
        return [
            ConfigIssue(
                "cluster.nats_user",
                "empty: this node logs in to NATS as nobody, so the servers accept anyone who "
                "reaches them; give each role its user (deploy/nats/nats-auth.conf)",
            )
        ]
    return []


def _gateway_login(config: Config) -> list[ConfigIssue]:
    """The TCP gateway publishes for every logger: with the service's own broker login, the
    shipped ACL (deploy/mosquitto/acl) refuses it, and no logger gets a 9014."""
    if config.tcp.listen and config.mqtt.url and not config.tcp.mqtt_url:
        return [
            ConfigIssue(
                "tcp.mqtt_url",
                "empty: the TCP gateway logs in to the broker as the service, which the shipped "
                "ACL does not let write hj212/+; give it its own login (user nonsite-gateway)",
            )
        ]
    return []


def _passwords(config: Config) -> list[ConfigIssue]:
    if not config.ingest.check_pw:
        return [
            ConfigIssue(
                "ingest.check_pw",
                "off: a frame's PW is not compared with its outlet's pw (any PW is accepted)",
            )
        ]
    issues: list[ConfigIssue] = []
    holders: dict[str, list[str]] = defaultdict(list)
    for i, ent in enumerate(config.enterprises):
        for j, outlet in enumerate(ent.outlets):
            at = f'enterprises[{i}] (id "{ent.id}").outlets[{j}] (id "{outlet.id}").pw'
            if outlet.pw is None:
                continue  # an error while check_pw is on (nonsite.config.load)
            if outlet.pw == "":
                issues.append(ConfigIssue(at, "empty: frames without a PW are accepted"))
            elif outlet.pw in DEFAULT_PASSWORDS:
                issues.append(
                    ConfigIssue(at, f"{outlet.pw!r} is a factory default: set the logger's own")
                )
            if outlet.pw:
                holders[outlet.pw].append(at)
    for entries in holders.values():
        if len(entries) > 1:
            for at in entries:
                others = len(entries) - 1
                issues.append(
                    ConfigIssue(at, f"shared with {others} other outlet(s): give each its own")
                )
    return issues
