"""Every channel gives up after its timeout, on connect and on read, against real sockets.

The outbox gives each channel a sender of its own, so a hung receiver costs only its own
channel's time, and a stop waits for a send under way at most that channel's timeout. That
holds only if every send ends within ``timeout_s`` (plus a little) whatever the receiver does:

- silent: the receiver accepts the connection, reads the request and never answers;
- unreachable: the connection is never accepted (a listener whose backlog is full drops the
  SYN, so ``connect`` hangs; the kernel's retries would take minutes).

Both end in a retryable :class:`DeliveryError`, not before the timeout and not long after.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest

from alerts.channels import (
    Channel,
    DeliveryError,
    DingTalkChannel,
    MqttChannel,
    SmtpChannel,
    WebhookChannel,
    WeComChannel,
)
from tests.alerts.channels.receiver import HungReceiver
from tests.alerts.channels.samples import notification

TIMEOUT_S = 0.5
SLACK_S = 2.0  # thread start-up, paho's loop ticking, a machine loaded by a parallel suite


class Unreachable:
    """A listener that never accepts, its backlog taken: further connects hang in SYN_SENT."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        probe_done = False
        while not probe_done:  # fill the accept queue until a connect no longer completes
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.2)
            try:
                s.connect(("127.0.0.1", self.port))
            except TimeoutError:
                s.close()
                probe_done = True
            else:
                self.fillers.append(s)
            assert len(self.fillers) < 16, "the kernel accepts beyond the backlog"

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


Build = Callable[[int], Channel]

CHANNELS: dict[str, Build] = {
    "webhook": lambda port: WebhookChannel(
        "hook", f"http://127.0.0.1:{port}/hook", timeout_s=TIMEOUT_S
    ),
    "dingtalk": lambda port: DingTalkChannel(
        "ding", f"http://127.0.0.1:{port}/robot/send?access_token=t", timeout_s=TIMEOUT_S
    ),
    "wecom": lambda port: WeComChannel(
        "wecom", f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k", timeout_s=TIMEOUT_S
    ),
    "smtp": lambda port: SmtpChannel(
        "mail",
        "127.0.0.1",
        port,
        sender="nonsite@example.cn",
        recipients=["duty@example.cn"],
        timeout_s=TIMEOUT_S,
    ),
    "mqtt": lambda port: MqttChannel("bus", "127.0.0.1", port, timeout_s=TIMEOUT_S),
}


@pytest.fixture(params=["silent", "unreachable"])
def receiver(request: pytest.FixtureRequest) -> Iterator[HungReceiver | Unreachable]:
    server = HungReceiver() if request.param == "silent" else Unreachable()
    yield server
    server.close()


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_a_send_ends_retryably_after_the_timeout(kind: str, receiver: HungReceiver | Unreachable):
    with closing(CHANNELS[kind](receiver.port)) as channel:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as failed:
            channel.send(notification())
        took = time.monotonic() - started
        assert failed.value.retryable, failed.value
        assert TIMEOUT_S * 0.9 <= took <= TIMEOUT_S + SLACK_S, (took, failed.value)
        closing_started = time.monotonic()
    # Closing (at shutdown) does not wait for the receiver either.
    assert time.monotonic() - closing_started <= TIMEOUT_S + SLACK_S
    if isinstance(receiver, HungReceiver) and kind != "smtp":  # SMTP waits for a greeting first
        assert receiver.received > 0  # the request was sent and read: the wait was the reply's
