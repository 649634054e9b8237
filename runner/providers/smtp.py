"""SMTP with the standard library: one connection per batch, plain, STARTTLS or implicit TLS.

Each message's `mime` goes out as it is (it already carries List-Unsubscribe, X-Campaign-ID and
X-Send-ID). A connection dropped mid-batch is reopened once; replies are classified by code:
4xx is temporary (retryable), 5xx is final (permanent).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.utils import parseaddr
from typing import Any, Self

from ..errors import ProviderError
from ..settings import Setting, Settings, parse_positive_float
from .base import OutgoingMessage, Provider, SendResult, keep_accepted
from .http import RATE_LIMIT, TokenBucket

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


class _Dropped(Exception):
    """The connection went away while sending one message."""


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

    def _connect(self) -> smtplib.SMTP:
        """An open, secured and authenticated connection; ProviderError for settings that cannot work."""
        context = self._ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
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
        connection: smtplib.SMTP | None = None
        reconnected = False
        try:
            for position, message in enumerate(messages):
                self._bucket.take(1)
                while True:
                    try:
                        if connection is None:
                            connection = self._connect()
                        results.append(self._send_one(connection, message))
                        break
                    except _Dropped as exc:
                        connection = None
                        if reconnected:
                            # The second drop in one batch: leave the rest for a later retry.
                            reason = f"smtp: connection to {self.host}:{self.port} dropped again ({exc})"
                            results += [SendResult.retryable(reason)] * (len(messages) - position)
                            return results
                        reconnected = True
                        log.warning("smtp: connection dropped (%s); reconnecting once", exc)
                    except (OSError, smtplib.SMTPException) as exc:
                        # Cannot connect (refused, unreachable, TLS failure): the server or network
                        # may come back, so every remaining message is retryable.
                        connection = None
                        reason = self.redact(f"smtp: cannot connect to {self.host}:{self.port}: {exc}")
                        results += [SendResult.retryable(reason)] * (len(messages) - position)
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

    def _send_one(self, connection: smtplib.SMTP, message: OutgoingMessage) -> SendResult:
        """Send one message on an open connection; raises _Dropped when the connection is gone."""
        sender = parseaddr(message.from_)[1] or message.from_
        try:
            refused = connection.send_message(message.mime, from_addr=sender, to_addrs=[message.to])
        except smtplib.SMTPServerDisconnected as exc:
            raise _Dropped(str(exc) or "server disconnected") from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"refused"))
            return _by_code(code, f"smtp: recipient {message.to} refused: {code} {_text(text)}")
        except (smtplib.SMTPNotSupportedError, ValueError) as exc:  # e.g. needs SMTPUTF8, server lacks it
            return SendResult.permanent(f"smtp: {message.to}: {exc}")
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, other replies
            if exc.smtp_code == 421:  # "service closing": the server is hanging up on us
                raise _Dropped(f"421 {_text(exc.smtp_error)}") from None
            return _by_code(exc.smtp_code, f"smtp: {message.to}: {exc.smtp_code} {_text(exc.smtp_error)}")
        except (OSError, smtplib.SMTPException) as exc:  # reset mid-transfer
            raise _Dropped(str(exc) or type(exc).__name__) from None
        if refused:
            code, text = refused.get(message.to, next(iter(refused.values())))
            return _by_code(code, f"smtp: recipient {message.to} refused: {code} {_text(text)}")
        return SendResult.accepted(message.mime.get("Message-ID"))


def _by_code(code: int, reason: str) -> SendResult:
    """4xx replies are temporary, everything else (5xx) is final."""
    return SendResult.retryable(reason) if 400 <= code < 500 else SendResult.permanent(reason)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()
