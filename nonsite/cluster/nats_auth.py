"""Who may connect to the NATS servers, and what each of nonsite's roles may do there.

Without a login, anyone who reaches a NATS server's client port could publish into the stream
(a frame in any enterprise's name, stored as received) or delete it. Each role logs in as its
own user (``[cluster] nats_user``, ``nats_password``) and may do only what it does:

- ``ingest`` publishes to the stream's subjects and creates or updates the stream (ingest
  nodes bring it to the configuration at start); it reads single messages only (a node
  resuming its session looks up its own last pack of a partition), no consumers.
- ``worker`` and ``web`` read: stream information, single messages, consumers of their own
  (created, asked about, deleted) and their flow-control replies. They cannot publish to the
  stream's subjects, purge or delete it.

Every user receives its replies and consumer deliveries on ``_INBOX.>`` (nats-py's inboxes).

The block is rendered here once: ``deploy/nats/nats-auth.conf`` is this text with each
password read from the server's environment (``$NONSITE_NATS_INGEST_PASSWORD``, …), checked
equal by tests/deploy/test_nats.py; the test clusters and ``nonsite demo --cluster`` render it
with generated passwords.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping

from ingest.jetstream.stream import StreamSettings

ROLES = ("ingest", "worker", "web")
API = "$JS.API"


def permissions(settings: StreamSettings) -> dict[str, dict[str, list[str]]]:
    """Each role's publish and subscribe allow-lists for the stream of ``settings``."""
    stream = settings.name
    read = [
        f"{API}.INFO",
        f"{API}.STREAM.NAMES",
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.INFO.{stream}.>",
        f"{API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",  # an ordered consumer answers the server's flow control
    ]
    write = [
        f"{settings.subject_prefix}.>",
        f"{API}.INFO",
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.STREAM.CREATE.{stream}",
        f"{API}.STREAM.UPDATE.{stream}",
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
    ]
    inboxes = ["_INBOX.>"]
    return {
        "ingest": {"publish": write, "subscribe": inboxes},
        "worker": {"publish": read, "subscribe": inboxes},
        "web": {"publish": list(read), "subscribe": inboxes},
    }


def password_variable(role: str) -> str:
    return f"NONSITE_NATS_{role.upper()}_PASSWORD"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization_conf(settings: StreamSettings, password: Callable[[str], str]) -> str:
    """The servers' ``authorization`` block; ``password(role)`` is the value as written in
    the file (a ``$VARIABLE`` the server reads from its environment, or a quoted literal)."""
    lines = ["authorization {", "  users = ["]
    for role, allowed in permissions(settings).items():
        lines.append(f"    {{user: {role}, password: {password(role)}, permissions: {{")
        for direction in ("publish", "subscribe"):
            subjects = ", ".join(_quoted(s) for s in allowed[direction])
            lines.append(f"      {direction}: {{allow: [{subjects}]}}")
        lines.append("    }}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def from_environment(role: str) -> str:
    return "$" + password_variable(role)


def generated_passwords() -> dict[str, str]:
    # A letter, then hex: the server parses an environment variable's value as it parses its
    # file, and reads one beginning with a digit or a sign as a number (and refuses it).
    return {role: "n" + secrets.token_hex(20) for role in ROLES}


def literal(passwords: Mapping[str, str]) -> Callable[[str], str]:
    return lambda role: _quoted(passwords[role])


__all__ = [
    "ROLES",
    "authorization_conf",
    "from_environment",
    "generated_passwords",
    "literal",
    "password_variable",
    "permissions",
]
