"""What the HTTP providers make of hostile 2xx answers and of rejections, on httpx.MockTransport:
an answer that is not the documented per-message result is retryable (never accepted), shown in
the result and in one log line; a permanent rejection of the ADDRESS asks for a suppression,
a rejection of the MESSAGE does not."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from provider_messages import make_message, make_messages
from provider_specs import SECRETS

from runner.providers import Outcome, SuppressionReason
from runner.providers.http import HttpProvider
from runner.providers.mailgun import MailgunProvider
from runner.providers.postmark import PostmarkProvider
from runner.providers.resend import ResendProvider
from runner.providers.sendgrid import SendGridProvider

Handler = Callable[[httpx.Request], httpx.Response]
BUILDERS: dict[str, Callable[..., HttpProvider]] = {
    "postmark": lambda **o: PostmarkProvider(SECRETS["postmark"], **o),
    "sendgrid": lambda **o: SendGridProvider(SECRETS["sendgrid"], **o),
    "mailgun": lambda **o: MailgunProvider(SECRETS["mailgun"], "mg.shop.example.com", **o),
    "resend": lambda **o: ResendProvider(SECRETS["resend"], **o),
}


def provider(name: str, handler: Handler, fake_time: Any) -> HttpProvider:
    """One try per request (max_retries=0), so each test sees exactly what one answer gives."""
    return BUILDERS[name](client=httpx.Client(transport=httpx.MockTransport(handler)), max_retries=0,
                          sleep=fake_time.sleep, clock=fake_time.monotonic, random=random.Random(5))


def always(response: httpx.Response) -> Handler:
    return lambda request: response


PORTAL = ("<!DOCTYPE html>\n<html><head><title>Hotel Wi-Fi</title></head>\n<body>Please log in to continue."
          f" ref={SECRETS['postmark']} {SECRETS['sendgrid']} {SECRETS['mailgun']} {SECRETS['resend']}</body></html>")

# 2xx answers that are not the provider's documented per-message result, for every provider.
HOSTILE = {
    "captive portal HTML": httpx.Response(200, text=PORTAL, headers={"Content-Type": "text/html"}),
    "empty body": httpx.Response(200),
    "JSON of another shape": httpx.Response(200, json={"status": "ok"}),
    "JSON null": httpx.Response(202, json=None),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("answer", sorted(HOSTILE))
def test_an_answer_that_is_not_the_documented_result_is_retryable_and_logged_once(
        name: str, answer: str, fake_time: Any, caplog: pytest.LogCaptureFixture) -> None:
    with provider(name, always(HOSTILE[answer]), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.RETRYABLE and result.provider_message_id is None
    assert "not the documented result" in (result.error or "")
    assert "may or may not have been sent" in (result.error or "")
    warnings = [r.getMessage() for r in caplog.records if "not the documented result" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    for text in (result.error or "", warnings[0]):
        assert not any(secret in text for secret in SECRETS.values())


def test_the_portal_is_named_in_the_reason(fake_time: Any) -> None:
    with provider("postmark", always(HOSTILE["captive portal HTML"]), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert "text/html" in (result.error or "") and "Hotel Wi-Fi" in (result.error or "")


def postmark_ok(request: httpx.Request) -> list[dict[str, Any]]:
    return [{"To": m["To"], "SubmittedAt": "2024-05-01T12:00:00Z", "MessageID": f"pm-{m['To']}", "ErrorCode": 0,
             "Message": "OK"} for m in json.loads(request.read())]


@pytest.mark.parametrize("entries,expected", [
    # fewer entries than messages: which entry is whose is unknowable, so none is trusted
    (lambda ok: ok[:1], [Outcome.RETRYABLE, Outcome.RETRYABLE]),
    # an entry without ErrorCode or MessageID, or with an ErrorCode that is not a number
    (lambda ok: [ok[0], {"To": "customer2@example.com"}], [Outcome.ACCEPTED, Outcome.RETRYABLE]),
    (lambda ok: [ok[0], {**ok[1], "ErrorCode": "0"}], [Outcome.ACCEPTED, Outcome.RETRYABLE]),
    (lambda ok: [ok[0], "OK"], [Outcome.ACCEPTED, Outcome.RETRYABLE]),
    # Postmark leaves ErrorCode out of "Message accepted, but delivery may be delayed."
    (lambda ok: [ok[0], {k: v for k, v in ok[1].items() if k != "ErrorCode"}], [Outcome.ACCEPTED] * 2),
])
def test_postmark_reads_each_entry_and_trusts_only_documented_ones(
        entries: Callable[[list[Any]], list[Any]], expected: list[Outcome], fake_time: Any) -> None:
    handler = lambda request: httpx.Response(200, json=entries(postmark_ok(request)))  # noqa: E731
    with provider("postmark", handler, fake_time) as sender:
        results = sender.send_batch(make_messages(2))
    assert [r.outcome for r in results] == expected


@pytest.mark.parametrize("body", [
    {"data": [{"id": "re-1"}]},  # one created for two messages
    {"data": [{"id": "re-1"}], "errors": [{"index": 7, "message": "Invalid `to` field."}]},  # no such index
    {"data": [{"id": "re-1"}, {"id": "re-2"}], "errors": [{"index": 0, "message": "Invalid `to` field."}]},
    {"errors": []},
])
def test_resend_answers_that_do_not_account_for_every_message_are_retryable(body: Any, fake_time: Any) -> None:
    with provider("resend", always(httpx.Response(200, json=body)), fake_time) as sender:
        results = sender.send_batch(make_messages(2))
    assert [r.outcome for r in results] == [Outcome.RETRYABLE] * 2


def test_resend_created_entry_without_an_id_is_retryable(fake_time: Any) -> None:
    with provider("resend", always(httpx.Response(200, json={"data": [{"id": "re-1"}, {}]})), fake_time) as sender:
        results = sender.send_batch(make_messages(2))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.RETRYABLE]


@pytest.mark.parametrize("response", [
    httpx.Response(200, headers={"X-Message-Id": "sg-1"}),  # SendGrid documents 202 Accepted
    httpx.Response(202),  # no message id
])
def test_sendgrid_success_is_202_with_a_message_id(response: httpx.Response, fake_time: Any) -> None:
    with provider("sendgrid", always(response), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.RETRYABLE


def test_mailgun_success_needs_the_message_id(fake_time: Any) -> None:
    with provider("mailgun", always(httpx.Response(200, json={"message": "Queued. Thank you."})), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.RETRYABLE


# -- rejections: the address or the message ------------------------------------------------

INACTIVE = ("You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: "
            "customer1@example.com. Inactive recipients are ones that have generated a hard bounce, a spam "
            "complaint, or a manual suppression.")


@pytest.mark.parametrize("code,message,suppress", [
    (406, INACTIVE, SuppressionReason.BOUNCED),
    (300, "Invalid 'To' address: 'customer1@example'.", SuppressionReason.BOUNCED),
    (300, "Error parsing 'To': Illegal email domain 'example.com.' in address 'customer1@example.com.'.",
     SuppressionReason.BOUNCED),
    (300, "Invalid 'From' address: 'hello@shop'.", None),
    (300, "Provide either email TextBody or HtmlBody or both.", None),
    (400, "The 'From' address you supplied (hello@shop.example.com) is not a Sender Signature on your account.",
     None),
    (401, "Sender signature not confirmed", None),
])
def test_postmark_error_codes(code: int, message: str, suppress: SuppressionReason | None, fake_time: Any) -> None:
    answer = httpx.Response(200, json=[{"ErrorCode": code, "Message": message}])
    with provider("postmark", always(answer), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.PERMANENT and result.suppress is suppress
    assert (result.error or "").startswith(f"postmark: ErrorCode {code}: ") and message in (result.error or "")


def test_postmark_whole_request_rejection_names_an_address_only_for_one_message(fake_time: Any) -> None:
    answer = httpx.Response(422, json={"ErrorCode": 300, "Message": "Invalid 'To' address: 'customer1@example'."})
    with provider("postmark", always(answer), fake_time) as sender:
        (alone,) = sender.send_batch([make_message(1)])
        several = sender.send_batch(make_messages(2))
    assert alone.suppress is SuppressionReason.BOUNCED
    assert [(r.outcome, r.suppress) for r in several] == [(Outcome.PERMANENT, None)] * 2


def sendgrid_400(field: str, message: str) -> httpx.Response:
    return httpx.Response(400, json={"errors": [{"field": field, "message": message, "help": None}]})


@pytest.mark.parametrize("answer,suppress", [
    (sendgrid_400("personalizations.0.to.0.email", "Does not contain a valid address."), SuppressionReason.BOUNCED),
    (sendgrid_400("personalizations.0.to.0.email", "Invalid type. Expected: string, given: array."), None),
    (sendgrid_400("from.email", "Does not contain a valid address."), None),
    (sendgrid_400("from", "The from address does not match a verified Sender Identity."), None),
    (httpx.Response(413, json={"errors": [{"message": "content too large", "field": "null"}]}), None),
])
def test_sendgrid_rejections(answer: httpx.Response, suppress: SuppressionReason | None, fake_time: Any) -> None:
    with provider("sendgrid", always(answer), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.PERMANENT and result.suppress is suppress
    if suppress:
        assert (result.error or "").startswith("sendgrid: HTTP 400 personalizations.0.to.0.email: ")


@pytest.mark.parametrize("message,suppress", [
    ("to parameter is not a valid address. please check documentation.", SuppressionReason.BOUNCED),
    ("'to' parameter is not a valid address. please check documentation", SuppressionReason.BOUNCED),
    ("from parameter is not a valid address. please check documentation", None),
    ("Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified", None),
    ("Send options (parameters starting with o:, h:, or v:) are limited to 16KB total", None),
])
def test_mailgun_rejections(message: str, suppress: SuppressionReason | None, fake_time: Any) -> None:
    with provider("mailgun", always(httpx.Response(400, json={"message": message})), fake_time) as sender:
        (result,) = sender.send_batch([make_message(1)])
    assert result.outcome is Outcome.PERMANENT and result.suppress is suppress
    assert (result.error or "").startswith("mailgun: HTTP 400")


INVALID_TO = "Invalid `to` field. The email address needs to follow the `email@example.com` format."


@pytest.mark.parametrize("message,suppress", [
    (INVALID_TO, SuppressionReason.BOUNCED),
    ("Invalid `from` field. The email address needs to follow the `email@example.com` format.", None),
    ("The `subject` field must be a `string`.", None),
])
def test_resend_batch_errors(message: str, suppress: SuppressionReason | None, fake_time: Any) -> None:
    answer = httpx.Response(200, json={"data": [{"id": "re-2"}], "errors": [{"index": 0, "message": message}]})
    with provider("resend", always(answer), fake_time) as sender:
        first, second = sender.send_batch(make_messages(2))
    assert first.outcome is Outcome.PERMANENT and first.suppress is suppress
    assert second.outcome is Outcome.ACCEPTED and second.suppress is None


def test_resend_whole_request_rejection_names_an_address_only_for_one_message(fake_time: Any) -> None:
    answer = httpx.Response(422, json={"statusCode": 422, "name": "validation_error", "message": INVALID_TO})
    with provider("resend", always(answer), fake_time) as sender:
        (alone,) = sender.send_batch([make_message(1)])
        several = sender.send_batch(make_messages(2))
    assert alone.suppress is SuppressionReason.BOUNCED and "validation_error" in (alone.error or "")
    assert [(r.outcome, r.suppress) for r in several] == [(Outcome.PERMANENT, None)] * 2
