"""E-mail: one message per notification, to a fixed list of recipients, over SMTP.

The Message-ID is derived from the idempotency key, so a redelivered notification carries
the same Message-ID as the first copy: mail clients and people can recognise it.

SMTP reply codes decide retrying: 4xx are temporary by definition (greylisting, mailbox
busy, server shutting down), 5xx are permanent (unknown recipient, rejected sender,
authentication failed). Refused connections, timeouts and dropped connections are retried.
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate

from alerts.channels.base import DEFAULT_TIMEOUT_S, DeliveryError, Notification, check_timeout


def message_id(key: str) -> str:
    """``<sha1(key)@nonsite>``: deterministic, so duplicates share it."""
    return f"<{hashlib.sha1(key.encode('utf-8'), usedforsecurity=False).hexdigest()}@nonsite>"


def one_line(text: str) -> str:
    # Header values may not contain line breaks (EmailMessage raises on them).
    return " ".join(text.split())


def _temporary(code: int) -> bool:
    # 4xx, and smtplib's -1 for a reply it could not read.
    return code < 500


class SmtpChannel:
    """Sends the notification as a plain-text e-mail through one SMTP server."""

    kind = "smtp"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if isinstance(recipients, str) or not recipients:
            raise ValueError("recipients must be a non-empty list of addresses")
        if starttls and ssl:
            raise ValueError(
                "choose one of starttls (upgrade a plain connection) and ssl (implicit TLS)"
            )
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.name = name
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.recipients = tuple(recipients)
        self._username = username
        self._password = password
        self.starttls = starttls
        self.ssl = ssl
        self.timeout_s = check_timeout(timeout_s)
        self._local_hostname: str | None = None

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()  # policy.default: RFC 2047 encodes the Chinese subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = one_line(n.title)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = message_id(n.key)
        msg["X-Nonsite-Key"] = one_line(n.key)
        msg["X-Nonsite-Event"] = one_line(n.event)
        # base64 keeps the Chinese body 7-bit clean for servers without 8BITMIME.
        msg.set_content(n.text, charset="utf-8", cte="base64")
        return msg

    def send(self, notification: Notification) -> None:
        msg = self.message(notification)
        where = f"SMTP {self.host}:{self.port}"
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl_context())
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._refused(where, exc.recipients, delivered=False) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data, helo, auth, connect
            reply = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            raise DeliveryError(
                f"{where} replied {exc.smtp_code} {reply} ({type(exc).__name__})",
                retryable=_temporary(exc.smtp_code),
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:  # includes a greeting that never came
            raise DeliveryError(f"{where} disconnected: {exc}") from exc
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, no AUTH, no SMTPUTF8
            raise DeliveryError(
                f"{where} lacks a needed extension: {exc}", retryable=False
            ) from exc
        except smtplib.SMTPException as exc:  # e.g. no usable AUTH mechanism: configuration
            raise DeliveryError(f"{where} failed: {exc}", retryable=False) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{where} certificate rejected: {exc}", retryable=False) from exc
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake cut short
            raise DeliveryError(f"{where} unreachable: {exc!r}") from exc
        except UnicodeError as exc:  # credentials or addresses that cannot be encoded
            raise DeliveryError(
                f"{where} cannot encode the message: {exc}", retryable=False
            ) from exc
        if refused:
            # Some recipients have it; the refused ones decide. Retrying re-sends to all of
            # them, which the shared Message-ID makes recognisable.
            raise self._refused(where, refused, delivered=True)

    def _refused(
        self, where: str, refused: Mapping[str, tuple[int, bytes]], *, delivered: bool
    ) -> DeliveryError:
        parts = [
            f"{addr}: {code} {reply.decode('utf-8', 'replace')}"
            for addr, (code, reply) in refused.items()
        ]
        others = "; delivered to the others" if delivered else ""
        return DeliveryError(
            f"{where} refused recipients {'; '.join(parts)}{others}",
            retryable=any(_temporary(code) for code, _ in refused.values()),
        )

    def _connect(self) -> smtplib.SMTP:
        if self._local_hostname is None:
            # smtplib would look the FQDN up (possibly a slow reverse lookup) on every connect.
            self._local_hostname = socket.getfqdn()
        if self.ssl:
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout_s,
                context=ssl_context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self._local_hostname, timeout=self.timeout_s
        )

    def close(self) -> None:
        """Nothing held: each notification uses its own short SMTP session."""

    def __repr__(self) -> str:
        return f"SmtpChannel(name={self.name!r})"


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()
