"""SMTP with the standard library: one connection per batch, plain, STARTTLS or implicit TLS.

Each message's `mime` goes out as it is (it already carries List-Unsubscribe, X-Campaign-ID and
X-Send-ID). Replies are classified by code: 4xx is temporary (retryable), 5xx is final
(permanent), and a 5xx whose enhanced status code rejects the recipient's mailbox (RFC 3463
5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1) also suppresses the address. A reply that is neither
(unreadable, or an unexpected code) is retryable, never accepted. A connection dropped before
the message went out is reopened once and the message sent again; one dropped after the server
had the whole message but before it confirmed it leaves that message retryable for the ledger,
because it may have been delivered.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.utils import parseaddr
from typing import Any, Self

from ..errors import ProviderError
from ..models import SuppressionReason
from ..settings import Setting, Settings, parse_positive_float
from .base import OutgoingMessage, Provider, SendResult, keep_accepted
from .pacing import TokenBucket
from .settings import RATE_LIMIT

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


def parse_security(raw: str) -> str:
    value = raw.strip().lower()
    if value not in DEFAULT_PORTS:
        raise ValueError("expected none, starttls or ssl")
    return value


def parse_optional_port(raw: str) -> int | None:
    if not raw.strip():
        return None
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("expected a port number from 1 to 65535")
    return value


SMTP_HOST = Setting("LIFECYCLE_SMTP_HOST", "", "SMTP server host name")
SMTP_PORT = Setting("LIFECYCLE_SMTP_PORT", "",
                    "SMTP port; empty = 587 for starttls, 465 for ssl, 25 for none", parse_optional_port)
SMTP_USERNAME = Setting("LIFECYCLE_SMTP_USERNAME", "", "SMTP user name; empty = no authentication")
SMTP_PASSWORD = Setting("LIFECYCLE_SMTP_PASSWORD", "", "SMTP password", secret=True)
SMTP_SECURITY = Setting("LIFECYCLE_SMTP_SECURITY", "starttls",
                        "starttls (upgrade a plain connection), ssl (TLS from the start) or none", parse_security)
SMTP_TIMEOUT = Setting("LIFECYCLE_SMTP_TIMEOUT", "30", "seconds to wait for the SMTP server", parse_positive_float)


# Enhanced status codes (RFC 3463) that reject the recipient's mailbox for good: bad destination
# mailbox, system or syntax, mailbox moved without forwarding address, null MX (RFC 7505),
# mailbox disabled. 5.1.0 "other address status" and 5.1.7/5.1.8 may be the sender's; 5.2.2
# (mailbox full) and 5.7.x (policy, relaying, content) are not about the address existing.
ADDRESS_STATUS = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})
_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class _Dropped(Exception):
    """The connection went away while sending one message; `after_payload` when the server may
    already have had all of it (it answered DATA with 354), so it may have been delivered."""

    def __init__(self, reason: str, after_payload: bool) -> None:
        super().__init__(reason)
        self.after_payload = after_payload


class _TrackedSMTP(smtplib.SMTP):
    """An SMTP connection that knows whether the current transaction's message went out: from
    the server's 354 to DATA until the next transaction starts (MAIL)."""

    payload_sent = False

    def putcmd(self, cmd: str, args: str = "") -> None:
        if cmd.lower() == "mail":
            self.payload_sent = False
        super().putcmd(cmd, args)

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()
        if code == 354:
            self.payload_sent = True
        return code, text


class _TrackedSMTPSSL(_TrackedSMTP, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


class SmtpProvider(Provider):
    name = "smtp"
    max_batch_size = 100
    settings = (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY, SMTP_TIMEOUT, RATE_LIMIT)

    def __init__(self, host: str, port: int | None = None, *, username: str | None = None,
                 password: str | None = None, security: str = "starttls", timeout: float = 30.0,
                 rate_limit: float | None = None, ssl_context: ssl.SSLContext | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.security = parse_security(security)
        self.port = port or DEFAULT_PORTS[self.security]
        self.username = username or None
        self._password = password or ""
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._bucket = TokenBucket(rate_limit or 0.0, max(rate_limit or 0.0, 1.0), clock, sleep)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        return cls(settings.require(SMTP_HOST), settings[SMTP_PORT], username=settings[SMTP_USERNAME],
                   password=settings[SMTP_PASSWORD], security=settings[SMTP_SECURITY],
                   timeout=settings[SMTP_TIMEOUT], rate_limit=settings[RATE_LIMIT], **options)

    def __repr__(self) -> str:
        return f"<SmtpProvider {self.security}://{self.host}:{self.port} user={self.username!r}>"

    def secrets(self) -> tuple[str, ...]:
        return (self._password,)

    def _connect(self) -> _TrackedSMTP:
        """An open, secured and authenticated connection; ProviderError for settings that cannot work."""
        context = self._ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            connection: _TrackedSMTP = _TrackedSMTPSSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = _TrackedSMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.security == "starttls":
                if not connection.has_extn("starttls"):
                    raise ProviderError(f"smtp: {self.host}:{self.port} does not offer STARTTLS",
                                        f"set {SMTP_SECURITY.name}=ssl or none, or use another port")
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            connection.close()
            raise ProviderError(self.redact(f"smtp: {self.host} refused the login for {self.username!r}: "
                                             f"{exc.smtp_code} {_text(exc.smtp_error)}"),
                                f"check {SMTP_USERNAME.name} and {SMTP_PASSWORD.name}") from None
        except smtplib.SMTPNotSupportedError:
            connection.close()
            raise ProviderError(f"smtp: {self.host} does not support authentication",
                                f"leave {SMTP_USERNAME.name} empty or use {SMTP_SECURITY.name}=starttls") from None
        except BaseException:
            connection.close()
            raise
        return connection

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        connection: _TrackedSMTP | None = None
        reconnected = False
        try:
            for message in messages:
                self._bucket.take(1)
                while True:
                    try:
                        if connection is None:
                            connection = self._connect()
                        results.append(self._send_one(connection, message))
                        break
                    except _Dropped as exc:
                        connection = None
                        if exc.after_payload:
                            # Sending it again now could deliver it twice: the ledger retries it
                            # later, with the reason in last_error.
                            reason = self.redact(f"smtp: connection to {self.host}:{self.port} lost after the "
                                                 f"message was sent, before the server confirmed it ({exc}); "
                                                 "it may or may not have been sent")
                            log.warning("%s", reason)
                            results.append(SendResult.retryable(reason))
                        if reconnected:
                            # The second drop in one batch: leave the rest for a later retry.
                            reason = f"smtp: connection to {self.host}:{self.port} dropped again ({exc})"
                            results += [SendResult.retryable(reason)] * (len(messages) - len(results))
                            return results
                        reconnected = True
                        if exc.after_payload:
                            break  # the next message goes over a new connection
                        log.warning("smtp: connection dropped (%s); reconnecting once", exc)
                    except (OSError, smtplib.SMTPException) as exc:
                        # Cannot connect (refused, unreachable, TLS failure): the server or network
                        # may come back, so every remaining message is retryable.
                        connection = None
                        reason = self.redact(f"smtp: cannot connect to {self.host}:{self.port}: {exc}")
                        results += [SendResult.retryable(reason)] * (len(messages) - len(results))
                        return results
        except Exception as exc:  # including a bug: what was accepted must still be reported
            kept = keep_accepted(results, len(messages), self.redact(f"smtp: {exc}"))
            if kept is None:
                raise
            log.error("smtp: %s; the messages not accepted are left for a later retry", self.redact(str(exc)))
            return kept
        finally:
            if connection is not None:
                _quit(connection)
        return results

    def _send_one(self, connection: _TrackedSMTP, message: OutgoingMessage) -> SendResult:
        """Send one message on an open connection; raises _Dropped when the connection is gone."""
        sender = parseaddr(message.from_)[1] or message.from_
        try:
            refused = connection.send_message(message.mime, from_addr=sender, to_addrs=[message.to])
        except smtplib.SMTPServerDisconnected as exc:
            raise _Dropped(str(exc) or "server disconnected", connection.payload_sent) from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"refused"))
            return self._by_reply(code, text, f"smtp: recipient {message.to} refused", connection, recipient=True)
        except (smtplib.SMTPNotSupportedError, ValueError) as exc:  # e.g. needs SMTPUTF8, server lacks it
            return SendResult.permanent(f"smtp: {message.to}: {exc}")
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, other replies
            if exc.smtp_code == 421:  # "service closing": the server refused it and is hanging up on us
                raise _Dropped(f"421 {_text(exc.smtp_error)}", after_payload=False) from None
            return self._by_reply(exc.smtp_code, exc.smtp_error, f"smtp: {message.to}", connection,
                                  recipient=not isinstance(exc, smtplib.SMTPSenderRefused))
        except (OSError, smtplib.SMTPException) as exc:  # reset mid-transfer
            raise _Dropped(str(exc) or type(exc).__name__, connection.payload_sent) from None
        if refused:
            code, text = refused.get(message.to, next(iter(refused.values())))
            return self._by_reply(code, text, f"smtp: recipient {message.to} refused", connection, recipient=True)
        return SendResult.accepted(message.mime.get("Message-ID"))

    def _by_reply(self, code: int, text: bytes | str, what: str, connection: _TrackedSMTP, *,
                  recipient: bool) -> SendResult:
        """A refusal by reply code: 4xx temporary, 5xx final, and a final rejection of the
        recipient's mailbox suppresses it. Anything else (no readable code, an unexpected one, a
        reply smtplib itself could not take) is not a clear answer: retryable, never accepted."""
        reason = self.redact(f"{what}: {code} {_text(text)}")
        if isinstance(text, bytes) and 400 <= code < 500:
            return SendResult.retryable(reason)
        if isinstance(text, bytes) and 500 <= code < 600:
            status = _ENHANCED_STATUS.match(_text(text))
            suppress = recipient and status is not None and status.group(1) in ADDRESS_STATUS
            return SendResult.permanent(reason, SuppressionReason.BOUNCED if suppress else None)
        sent = ("it may or may not have been sent" if connection.payload_sent else "it was not sent")
        reason = self.redact(f"{what}: unclear reply {code} {_text(text)!r}; {sent}")
        log.warning("%s", reason)
        return SendResult.retryable(reason)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()
