"""The SMTP provider end to end: a real aiosmtpd server on 127.0.0.1 receives real messages."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from provider_messages import make_message, make_messages

from runner.errors import ConfigError, ProviderError
from runner.providers import Outcome, SuppressionReason, provider_from_settings
from runner.providers.smtp import SmtpProvider
from runner.settings import Settings

PASSWORD = "smtp-SECRET-password-0005"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unwire(text: str) -> str:
    """SMTP carries CRLF line ends; the messages were built with LF."""
    return text.replace("\r\n", "\n")


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and misbehaves on request."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.connections: set[tuple[str, int]] = set()
        self.drop_on_mail = 0  # how many MAIL commands to hang up on (before the message goes out)
        self.drop_on_data: dict[str, int] = {}  # recipient -> how many messages to hang up on unanswered
        self.sender_reply: str | None = None  # a refusal for every MAIL FROM
        self.data_replies: dict[str, str] = {}  # recipient -> the reply to its message instead of 250

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.drop_on_mail > 0:
            self.drop_on_mail -= 1
            server.transport.abort()  # an idle connection the server closed, found out at MAIL
            return "421 gone"
        if self.sender_reply:
            return self.sender_reply
        envelope.mail_from, envelope.mail_options = address, mail_options
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        refusals = {"bad": "550 5.1.1 <{}>: no such user", "busy": "450 4.2.1 <{}>: mailbox busy, try again later",
                    "disabled": "550 5.2.1 <{}>: mailbox disabled", "full": "552 5.2.2 <{}>: mailbox full",
                    "relay": "550 5.7.1 <{}>: relaying denied", "plain": "550 <{}>: no such user"}
        for prefix, reply in refusals.items():
            if address.startswith(prefix):
                return reply.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.connections.add(session.peer)
        recipient = envelope.rcpt_tos[0]
        if self.drop_on_data.get(recipient, 0) > 0:
            self.drop_on_data[recipient] -= 1
            server.transport.abort()  # the whole message arrived; hang up without a reply, as a crash would
            return "421 gone"
        if recipient in self.data_replies:
            return self.data_replies[recipient]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler, port = Mailbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_messages_arrive_with_their_headers_and_parts_over_one_connection(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    messages = make_messages(3)
    with SmtpProvider("127.0.0.1", port, security="none", timeout=5) as provider:
        results = provider.send_batch(messages)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert [r.provider_message_id for r in results] == [m.mime["Message-ID"] for m in messages]
    assert len(box.connections) == 1  # one connection reused for the whole batch
    for message, (mail_from, rcpt_tos, received) in zip(messages, box.received, strict=True):
        assert mail_from == "hello@shop.example.com" and rcpt_tos == [message.to]
        # Long headers are folded on the wire; unfolding may leave the fold's leading space.
        assert received["List-Unsubscribe"].strip() == message.headers["List-Unsubscribe"]
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert received["X-Campaign-ID"] == message.campaign_id
        assert received["X-Send-ID"] == str(message.send_id)
        assert received["Subject"] == message.subject
        assert received.get_content_type() == "multipart/alternative"
        plain, html = received.iter_parts()
        assert plain.get_content_type() == "text/plain" and unwire(plain.get_content()) == message.text
        assert html.get_content_type() == "text/html" and unwire(html.get_content()).rstrip("\n") == message.html


def test_refused_recipients_are_classified_by_reply_code_and_do_not_block_others(
        mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    messages = [make_message(1), make_message(2, to="bad@example.com"), make_message(3, to="busy@example.com"),
                make_message(4)]
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(messages)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.RETRYABLE, Outcome.ACCEPTED]
    assert "550" in (results[1].error or "") and "450" in (results[2].error or "")
    assert [rcpt for _, (rcpt,), _ in box.received] == ["customer1@example.com", "customer4@example.com"]
    assert len(box.connections) == 1


@pytest.mark.parametrize("to,suppress", [
    ("bad@example.com", SuppressionReason.BOUNCED),  # 5.1.1 bad destination mailbox
    ("disabled@example.com", SuppressionReason.BOUNCED),  # 5.2.1 mailbox disabled
    ("full@example.com", None),  # 5.2.2 mailbox full: the address exists
    ("relay@example.com", None),  # 5.7.1 relaying denied: the server's policy, not the address
    ("plain@example.com", None),  # no enhanced status code: the refusal may be about anything
])
def test_only_a_final_rejection_of_the_mailbox_suppresses_it(mailbox: tuple[Mailbox, int], to: str,
                                                             suppress: SuppressionReason | None) -> None:
    _, port = mailbox
    (result,) = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch([make_message(1, to=to)])
    assert result.outcome is Outcome.PERMANENT and result.suppress is suppress
    assert to in (result.error or "")


def test_a_refused_sender_or_content_suppresses_nobody(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    box.data_replies["customer1@example.com"] = "554 5.7.1 message content rejected as spam"
    box.data_replies["customer2@example.com"] = "550 5.1.1 <customer2@example.com>: unknown user"  # checked after DATA
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(make_messages(2))
    assert [(r.outcome, r.suppress) for r in results] == [
        (Outcome.PERMANENT, None), (Outcome.PERMANENT, SuppressionReason.BOUNCED)]
    box.sender_reply = "553 5.1.8 <hello@shop.example.com>: sender domain does not exist"
    (result,) = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch([make_message(3)])
    assert result.outcome is Outcome.PERMANENT and result.suppress is None and "553" in (result.error or "")


def test_an_unclear_reply_to_the_message_is_retryable_never_accepted(
        mailbox: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture) -> None:
    box, port = mailbox
    box.data_replies["customer1@example.com"] = "hello there"  # no reply code at all
    box.data_replies["customer2@example.com"] = "354 go on"  # a code that does not end a message
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(make_messages(3))
    assert [r.outcome for r in results] == [Outcome.RETRYABLE, Outcome.RETRYABLE, Outcome.ACCEPTED]
    assert all("unclear reply" in (r.error or "") and "may or may not have been sent" in (r.error or "")
               for r in results[:2])
    assert [line for line in caplog.messages if "unclear reply" in line] == [r.error for r in results[:2]]


def test_a_connection_dropped_before_the_message_went_out_is_reopened_once(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    box.drop_on_mail = 1
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(make_messages(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert [rcpt for _, (rcpt,), _ in box.received] == [f"customer{n}@example.com" for n in (1, 2, 3)]


def test_a_connection_lost_after_the_message_went_out_leaves_it_retryable(
        mailbox: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture) -> None:
    box, port = mailbox
    box.drop_on_data["customer2@example.com"] = 1
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(make_messages(3))
    # Sending it again at once could deliver it twice; the ledger retries it later, visibly.
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.RETRYABLE, Outcome.ACCEPTED]
    assert "may or may not have been sent" in (results[1].error or "")
    assert results[1].error in caplog.messages
    assert [rcpt for _, (rcpt,), _ in box.received] == ["customer1@example.com", "customer3@example.com"]
    assert len(box.connections) == 2


def test_a_second_drop_leaves_the_rest_retryable(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    box.drop_on_mail = 1
    box.drop_on_data["customer2@example.com"] = 1
    results = SmtpProvider("127.0.0.1", port, security="none", timeout=5).send_batch(make_messages(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.RETRYABLE, Outcome.RETRYABLE]
    assert "may or may not have been sent" in (results[1].error or "")
    assert "dropped again" in (results[2].error or "")


def test_an_unreachable_server_makes_every_message_retryable() -> None:
    results = SmtpProvider("127.0.0.1", free_port(), security="none", timeout=2).send_batch(make_messages(2))
    assert all(r.outcome is Outcome.RETRYABLE and "cannot connect" in (r.error or "") for r in results)


@pytest.fixture
def auth_mailbox() -> Iterator[tuple[Mailbox, int]]:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"shop"
              and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # let the server send 235 or 535

    handler, port = Mailbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


INSECURE_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@INSECURE_AUTH
def test_login_with_the_right_password(auth_mailbox: tuple[Mailbox, int]) -> None:
    _, port = auth_mailbox
    provider = SmtpProvider("127.0.0.1", port, security="none", username="shop", password=PASSWORD, timeout=5)
    assert [r.outcome for r in provider.send_batch(make_messages(2))] == [Outcome.ACCEPTED] * 2
    assert PASSWORD not in repr(provider)


@INSECURE_AUTH
def test_a_refused_login_is_a_provider_error_without_the_password(auth_mailbox: tuple[Mailbox, int]) -> None:
    _, port = auth_mailbox
    provider = SmtpProvider("127.0.0.1", port, security="none", username="shop", password=PASSWORD + "x", timeout=5)
    with pytest.raises(ProviderError) as raised:
        provider.send_batch(make_messages(1))
    assert "535" in str(raised.value) and "LIFECYCLE_SMTP_PASSWORD" in (raised.value.hint or "")
    assert PASSWORD not in f"{raised.value} {raised.value.hint}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_modes(security: str, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    handler, port = Mailbox(), free_port()
    if security == "ssl":
        controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_context)
    else:
        controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_context,
                                require_starttls=True)
    controller.start()
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        provider = SmtpProvider("127.0.0.1", port, security=security, ssl_context=client_context, timeout=5)
        assert [r.outcome for r in provider.send_batch(make_messages(2))] == [Outcome.ACCEPTED] * 2
        assert len(handler.received) == 2
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_is_a_provider_error(mailbox: tuple[Mailbox, int]) -> None:
    _, port = mailbox
    with pytest.raises(ProviderError, match="STARTTLS"):
        SmtpProvider("127.0.0.1", port, security="starttls", timeout=5).send_batch(make_messages(1))


def test_from_settings() -> None:
    with pytest.raises(ConfigError, match="LIFECYCLE_SMTP_HOST"):
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "smtp"}))
    with pytest.raises(ConfigError, match="LIFECYCLE_SMTP_SECURITY"):
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "smtp", "LIFECYCLE_SMTP_HOST": "h",
                                         "LIFECYCLE_SMTP_SECURITY": "tls"}))
    provider = provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "smtp", "LIFECYCLE_SMTP_HOST": "mail.example.com",
                                                "LIFECYCLE_SMTP_SECURITY": "ssl", "LIFECYCLE_SMTP_PASSWORD": PASSWORD}))
    assert isinstance(provider, SmtpProvider) and provider.port == 465
    assert PASSWORD not in repr(provider)
