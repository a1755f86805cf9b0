"""The e-mail channel against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.channels import DeliveryError, SmtpChannel
from nonsite.embedded_broker import free_port
from tests.alerts.channels.samples import closed_port, notification, send_error, timed_send_error

SENDER = "nonsite@alerts.example.cn"
RECIPIENTS = ("duty@hbj.example.cn", "brigade@hbj.example.cn")


class Handler:
    """Accepts mail and records it; replies can be scripted per SMTP command."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, list[str], bytes]] = []  # (mail from, rcpt tos, data)
        self.mail_reply: str | None = None
        self.rcpt_replies: dict[str, str] = {}  # address -> reply refusing it
        self.data_reply: str | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        with self.lock:
            return [
                email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[misc]
                for _, _, data in self.messages
            ]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"alerts",
        b"p@ss",
    )
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture
def smtpd() -> Iterator[tuple[Controller, Handler]]:
    handler = Handler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,  # plain AUTH on loopback: these tests have no certificates
    )
    controller.start()
    yield controller, handler
    controller.stop()


def channel(controller: Controller, **kw) -> SmtpChannel:
    kw.setdefault("sender", SENDER)
    kw.setdefault("recipients", RECIPIENTS)
    return SmtpChannel("mail", controller.hostname, controller.port, **kw)


@pytest.mark.integration
def test_delivers_a_chinese_mail_with_a_deterministic_message_id(smtpd):
    controller, handler = smtpd
    n = notification()
    channel(controller).send(n)
    [(mail_from, rcpt_tos, data)] = handler.messages
    assert mail_from == SENDER
    assert rcpt_tos == list(RECIPIENTS)
    [msg] = handler.parsed()
    assert msg["Subject"] == n.title
    raw_subject = data.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0]
    assert raw_subject.isascii()  # RFC 2047 encoded words
    assert b"=?utf-8?" in raw_subject
    assert msg["Message-ID"] == f"<{hashlib.sha1(n.key.encode()).hexdigest()}@nonsite>"
    assert msg["X-Nonsite-Key"] == n.key
    assert msg["From"] == SENDER
    assert msg["To"] == ", ".join(RECIPIENTS)
    assert msg["Date"]
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().rstrip("\n") == n.text
    assert data.isascii()  # 7-bit clean: servers without 8BITMIME take it too


@pytest.mark.integration
def test_a_redelivery_has_the_same_message_id(smtpd):
    controller, handler = smtpd
    ch = channel(controller)
    ch.send(notification())
    ch.send(notification())
    ch.send(notification(key="case-42-event-8-hook"))
    ids = [m["Message-ID"] for m in handler.parsed()]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.integration
def test_a_multiline_title_becomes_one_subject_line(smtpd):
    controller, handler = smtpd
    channel(controller).send(notification(title="第一行\n第二行"))
    assert handler.parsed()[0]["Subject"] == "第一行 第二行"


@pytest.mark.integration
def test_login(smtpd):
    controller, handler = smtpd
    channel(controller, username="alerts", password="p@ss").send(notification())
    assert len(handler.messages) == 1
    with pytest.raises(DeliveryError) as err:
        channel(controller, username="alerts", password="wrong").send(notification())
    assert not err.value.retryable
    assert "535" in err.value.detail


@pytest.mark.integration
def test_an_unknown_recipient_is_permanent(smtpd):
    controller, handler = smtpd
    handler.rcpt_replies = dict.fromkeys(RECIPIENTS, "550 5.1.1 mailbox unavailable")
    with pytest.raises(DeliveryError) as err:
        channel(controller).send(notification())
    assert not err.value.retryable
    assert "550" in err.value.detail
    assert handler.messages == []


@pytest.mark.integration
def test_a_temporarily_refused_recipient_is_retryable(smtpd):
    controller, handler = smtpd
    handler.rcpt_replies = {RECIPIENTS[0]: "450 4.2.1 mailbox busy, try later"}
    with pytest.raises(DeliveryError) as err:
        channel(controller, recipients=RECIPIENTS[:1]).send(notification())
    assert err.value.retryable


@pytest.mark.integration
def test_a_partial_refusal_reports_the_refused_recipient(smtpd):
    controller, handler = smtpd
    handler.rcpt_replies = {RECIPIENTS[1]: "550 5.1.1 no such user"}
    with pytest.raises(DeliveryError) as err:
        channel(controller).send(notification())
    assert not err.value.retryable
    assert RECIPIENTS[1] in err.value.detail
    assert "delivered to the others" in err.value.detail
    [(_, rcpt_tos, _)] = handler.messages
    assert rcpt_tos == [RECIPIENTS[0]]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("command", "reply", "retryable"),
    [
        ("mail_reply", "553 5.7.1 sender rejected", False),
        ("mail_reply", "451 4.3.0 try again", True),
        ("data_reply", "554 5.6.0 content rejected", False),
        ("data_reply", "452 4.3.1 insufficient storage", True),
    ],
)
def test_reply_codes_decide_retrying(smtpd, command, reply, retryable):
    controller, handler = smtpd
    setattr(handler, command, reply)
    with pytest.raises(DeliveryError) as err:
        channel(controller).send(notification())
    assert err.value.retryable is retryable
    assert reply[:3] in err.value.detail


@pytest.mark.integration
def test_connection_refused_is_retryable():
    ch = SmtpChannel("mail", "127.0.0.1", closed_port(), sender=SENDER, recipients=RECIPIENTS)
    err = send_error(ch)
    assert err.retryable


@pytest.mark.integration
def test_a_server_that_never_greets_is_retryable_after_the_timeout():
    # A listening socket that nobody accepts: the TCP connection completes in the
    # kernel's backlog, and the 220 greeting never comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(4)
        port = mute.getsockname()[1]
        ch = SmtpChannel(
            "mail", "127.0.0.1", port, sender=SENDER, recipients=RECIPIENTS, timeout_s=0.5
        )
        err, elapsed = timed_send_error(ch)
    assert err.retryable
    assert 0.4 < elapsed < 2.0


@pytest.mark.integration
def test_starttls_on_a_server_without_it_is_permanent(smtpd):
    controller, _ = smtpd
    with pytest.raises(DeliveryError) as err:
        channel(controller, starttls=True).send(notification())
    assert not err.value.retryable


@pytest.mark.parametrize(
    "kw",
    [
        {"recipients": ()},
        {"recipients": "duty@hbj.example.cn"},
        {"starttls": True, "ssl": True},
        {"username": "alerts"},
        {"timeout_s": 0},
    ],
)
def test_bad_settings_are_refused_at_construction(kw):
    args = {"sender": SENDER, "recipients": RECIPIENTS, **kw}
    with pytest.raises(ValueError):
        SmtpChannel("mail", "127.0.0.1", 25, **args)
