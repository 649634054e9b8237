"""Behaviour of the shared HTTP machinery through real providers, on httpx.MockTransport with fake
time: retries and backoff, Retry-After and reset headers, timeouts, partial failures that never
re-send accepted messages, Resend idempotency, pacing, and secrets kept out of error text."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from provider_messages import make_message, make_messages
from provider_specs import SECRETS

from runner.errors import ConfigError, ProviderError
from runner.providers import Outcome, provider_from_settings
from runner.providers.mailgun import MailgunProvider
from runner.providers.pacing import TokenBucket
from runner.providers.postmark import PostmarkProvider
from runner.providers.resend import ResendProvider, batch_idempotency_key
from runner.providers.sendgrid import SendGridProvider
from runner.settings import Settings

Handler = Callable[[httpx.Request], httpx.Response]
SERVER_DATE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def scripted(*steps: httpx.Response | Exception | Handler) -> tuple[Handler, list[httpx.Request]]:
    """A transport handler answering request n with steps[n] (an exception is raised)."""
    seen: list[httpx.Request] = []
    queue: Iterator[Any] = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = next(queue)
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    return handler, seen


def postmark(handler: Handler, fake_time: Any, **options: Any) -> PostmarkProvider:
    return PostmarkProvider(SECRETS["postmark"], client=httpx.Client(transport=httpx.MockTransport(handler)),
                            sleep=fake_time.sleep, clock=fake_time.monotonic, random=random.Random(1), **options)


def resend(handler: Handler, fake_time: Any, **options: Any) -> ResendProvider:
    return ResendProvider(SECRETS["resend"], client=httpx.Client(transport=httpx.MockTransport(handler)),
                          sleep=fake_time.sleep, clock=fake_time.monotonic, random=random.Random(1), **options)


def sendgrid(handler: Handler, fake_time: Any, **options: Any) -> SendGridProvider:
    return SendGridProvider(SECRETS["sendgrid"], client=httpx.Client(transport=httpx.MockTransport(handler)),
                            sleep=fake_time.sleep, clock=fake_time.monotonic, random=random.Random(1), **options)


def mailgun(handler: Handler, fake_time: Any, **options: Any) -> MailgunProvider:
    return MailgunProvider(SECRETS["mailgun"], "mg.shop.example.com",
                           client=httpx.Client(transport=httpx.MockTransport(handler)),
                           sleep=fake_time.sleep, clock=fake_time.monotonic, random=random.Random(1), **options)


def postmark_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"To": m["To"], "MessageID": f"id-{m['To']}", "ErrorCode": 0, "Message": "OK",
                                      "SubmittedAt": "2024-05-01T12:00:00Z"} for m in json.loads(request.read())])


def recipients(request: httpx.Request) -> list[str]:
    return [m["To"] for m in json.loads(request.read())]


# -- retries and backoff ----------------------------------------------------------------------

def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(fake_time: Any) -> None:
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "5"}, json={"ErrorCode": 429}), postmark_ok)
    results = postmark(handler, fake_time).send_batch(make_messages(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert len(seen) == 2 and recipients(seen[0]) == recipients(seen[1])
    (slept,) = fake_time.sleeps
    assert 5.0 <= slept <= 5.5  # the server's hint plus at most 10% jitter


def test_retry_after_as_an_http_date_is_measured_against_the_servers_date(fake_time: Any) -> None:
    headers = {"Date": format_datetime(SERVER_DATE, usegmt=True),
               "Retry-After": format_datetime(SERVER_DATE + timedelta(seconds=12), usegmt=True)}
    handler, _ = scripted(httpx.Response(503, headers=headers), postmark_ok)
    postmark(handler, fake_time).send_batch(make_messages(1))
    (slept,) = fake_time.sleeps
    assert 12.0 <= slept <= 13.0


def test_sendgrid_rate_limit_reset_header_sets_the_wait(fake_time: Any) -> None:
    reset = int((SERVER_DATE + timedelta(seconds=8)).timestamp())
    limited = httpx.Response(429, headers={"Date": format_datetime(SERVER_DATE, usegmt=True),
                                           "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                                           "X-RateLimit-Reset": str(reset)},
                             json={"errors": [{"field": None, "message": "too many requests"}]})
    handler, _ = scripted(limited, httpx.Response(202, headers={"X-Message-Id": "sg-1"}))
    (result,) = sendgrid(handler, fake_time).send_batch([make_message(1)])
    assert result.outcome is Outcome.ACCEPTED and result.provider_message_id == "sg-1"
    (slept,) = fake_time.sleeps
    assert 8.0 <= slept <= 9.0


def test_500_then_success_backs_off_exponentially_with_jitter(fake_time: Any) -> None:
    handler, seen = scripted(httpx.Response(500), httpx.Response(502), postmark_ok)
    results = postmark(handler, fake_time).send_batch(make_messages(2))
    assert all(r.outcome is Outcome.ACCEPTED for r in results) and len(seen) == 3
    first, second = fake_time.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # base 1 s, doubled, "equal jitter"


def test_read_timeout_is_retried(fake_time: Any) -> None:
    handler, seen = scripted(httpx.ReadTimeout("no answer"), postmark_ok)
    results = postmark(handler, fake_time).send_batch(make_messages(2))
    assert all(r.outcome is Outcome.ACCEPTED for r in results) and len(seen) == 2


def test_retries_are_bounded_then_results_are_retryable(fake_time: Any) -> None:
    handler, seen = scripted(*[httpx.ConnectError("refused")] * 3)
    results = postmark(handler, fake_time, max_retries=2).send_batch(make_messages(2))
    assert len(seen) == 3 and len(fake_time.sleeps) == 2
    assert all(r.outcome is Outcome.RETRYABLE and "connection failed" in (r.error or "") for r in results)


def test_total_sleep_is_capped_and_the_rest_goes_back_to_the_ledger(fake_time: Any) -> None:
    slow = httpx.Response(429, headers={"Retry-After": "45"})
    handler, seen = scripted(slow, slow, slow)
    results = postmark(handler, fake_time, max_retry_wait=60).send_batch(make_messages(2))
    assert len(seen) == 2 and sum(fake_time.sleeps) <= 60
    assert all(r.outcome is Outcome.RETRYABLE and r.retry_after == 45 for r in results)


def test_mailgun_429_hint_in_the_body_is_honoured(fake_time: Any) -> None:
    body = {"message": "Domain example.com is not allowed to send: account-requests-per-sec limit exceeded, "
                       "try again after 120 seconds"}
    handler, seen = scripted(httpx.Response(429, json=body))
    (result,) = mailgun(handler, fake_time).send_batch([make_message(1)])
    assert len(seen) == 1 and fake_time.sleeps == []  # 120 s exceeds the 60 s budget: no sleeping
    assert result.outcome is Outcome.RETRYABLE and result.retry_after == 120


# -- partial failures ---------------------------------------------------------------------

def test_postmark_partial_failure_retries_only_the_retryable_messages(fake_time: Any) -> None:
    messages = make_messages(4)

    def first(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.read())
        return httpx.Response(200, json=[
            {"To": sent[0]["To"], "MessageID": "a", "ErrorCode": 0, "Message": "OK"},
            {"ErrorCode": 406, "Message": f"Found inactive addresses: {sent[1]['To']}."},
            {"ErrorCode": 429, "Message": "Rate limit exceeded"},
            {"To": sent[3]["To"], "MessageID": "d", "ErrorCode": 0, "Message": "OK"},
        ])

    handler, seen = scripted(first, postmark_ok)
    results = postmark(handler, fake_time).send_batch(messages)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert [r.provider_message_id for r in results] == ["a", None, f"id-{messages[2].to}", "d"]
    assert "inactive" in (results[1].error or "")
    assert recipients(seen[1]) == [messages[2].to]  # accepted and rejected messages are not sent again


def test_one_rejected_recipient_does_not_block_the_others_sendgrid(fake_time: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        to = json.loads(request.read())["personalizations"][0]["to"][0]["email"]
        if to == "customer2@example.com":
            return httpx.Response(400, json={"errors": [{"field": "personalizations.0.to.0.email",
                                                         "message": "Does not contain a valid address."}]})
        return httpx.Response(202, headers={"X-Message-Id": f"sg-{to}"})

    results = sendgrid(answer, fake_time).send_batch(make_messages(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED]
    assert "valid address" in (results[1].error or "") and fake_time.sleeps == []


def test_one_rejected_recipient_does_not_block_the_others_mailgun(fake_time: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if b"customer1@example.com" in request.read():
            return httpx.Response(400, json={"message": "to parameter is not a valid address."})
        return httpx.Response(200, json={"id": "<mg-1>", "message": "Queued. Thank you."})

    results = mailgun(answer, fake_time).send_batch(make_messages(2))
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.ACCEPTED]


def test_resend_permissive_batch_maps_errors_by_index(fake_time: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-batch-validation"] == "permissive"
        return httpx.Response(200, json={"data": [{"id": "re-0"}, {"id": "re-2"}],
                                         "errors": [{"index": 1, "message": "Invalid `to` field."}]})

    results = resend(answer, fake_time).send_batch(make_messages(3))
    assert [(r.outcome, r.provider_message_id) for r in results] == [
        (Outcome.ACCEPTED, "re-0"), (Outcome.PERMANENT, None), (Outcome.ACCEPTED, "re-2")]


# -- Resend idempotency -------------------------------------------------------------------

def test_resend_retry_replays_the_same_idempotency_key_and_body(fake_time: Any) -> None:
    ok = httpx.Response(200, json={"data": [{"id": "re-1"}, {"id": "re-2"}]})
    handler, seen = scripted(httpx.ReadTimeout("lost answer"), httpx.Response(500), ok)
    messages = make_messages(2)
    results = resend(handler, fake_time).send_batch(messages)
    assert [r.provider_message_id for r in results] == ["re-1", "re-2"]
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert keys == {batch_idempotency_key(messages)} and len(seen) == 3
    assert len({r.read() for r in seen}) == 1  # byte-identical payload, so Resend replays, never re-sends
    assert batch_idempotency_key(make_messages(2, start=3)) not in keys
    assert len(batch_idempotency_key(make_messages(100))) <= 256


def test_resend_concurrent_idempotent_request_is_retried_with_the_same_key(fake_time: Any) -> None:
    busy = httpx.Response(409, json={"statusCode": 409, "name": "concurrent_idempotent_requests",
                                     "message": "Same idempotency key used while original request is in progress."})
    handler, seen = scripted(busy, httpx.Response(200, json={"data": [{"id": "re-1"}]}))
    (result,) = resend(handler, fake_time).send_batch([make_message(1)])
    assert result.outcome is Outcome.ACCEPTED and len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    assert len(fake_time.sleeps) == 1 and fake_time.sleeps[0] >= 1.0


def test_resend_reused_key_with_another_payload_is_not_sent_again(fake_time: Any) -> None:
    reused = httpx.Response(409, json={"statusCode": 409, "name": "invalid_idempotent_request",
                                       "message": "Same idempotency key used with a different request payload."})
    handler, seen = scripted(reused)
    (result,) = resend(handler, fake_time).send_batch([make_message(1)])
    assert result.outcome is Outcome.PERMANENT and len(seen) == 1
    assert "already submitted" in (result.error or "")


# -- pacing -------------------------------------------------------------------------------

def test_token_bucket_paces_to_the_rate(fake_time: Any) -> None:
    bucket = TokenBucket(rate=10, capacity=10, clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(3):
        bucket.take(10)
    assert fake_time.sleeps == [1.0, 1.0]
    fake_time.now += 5  # idle time refills, but only up to capacity
    assert bucket.take(10) == 0 and bucket.take(5) == 0.5
    assert TokenBucket(0, 1, fake_time.monotonic, fake_time.sleep).take(10**6) == 0  # 0 = unlimited


def test_message_rate_limit_paces_requests(fake_time: Any) -> None:
    provider = postmark(postmark_ok, fake_time, rate_limit=100, batch_size=50)
    results = provider.send_batch(make_messages(200))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert sum(fake_time.sleeps) == pytest.approx(1.0)  # a 100-message burst, then 100 more at 100/s


def test_resend_default_request_rate_is_two_per_second(fake_time: Any) -> None:
    provider = resend(lambda r: httpx.Response(200, json={"data": [{"id": "x"}] * len(json.loads(r.read()))}),
                      fake_time, batch_size=10)
    provider.send_batch(make_messages(40))
    assert sum(fake_time.sleeps) == pytest.approx(1.0)  # 4 requests: 2 at once, then one every 0.5 s


def test_requests_carry_the_configured_timeout(fake_time: Any) -> None:
    handler, seen = scripted(postmark_ok)
    postmark(handler, fake_time, timeout=4.5).send_batch([make_message(1)])
    assert seen[0].extensions["timeout"] == {"connect": 4.5, "read": 4.5, "write": 4.5, "pool": 4.5}


# -- credentials and secrets --------------------------------------------------------------

@pytest.mark.parametrize("factory,status", [(postmark, 401), (sendgrid, 401), (mailgun, 401), (resend, 403)])
def test_auth_failure_raises_without_the_secret(factory: Any, status: int, fake_time: Any) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile or careless server echoing the credential back must not leak it either.
        auth = request.headers.get("Authorization") or request.headers.get("X-Postmark-Server-Token")
        return httpx.Response(status, json={"message": f"bad credentials: {auth}", "Message": f"bad token {auth}"})

    provider = factory(echo, fake_time)
    with pytest.raises(ProviderError) as raised:
        provider.send_batch(make_messages(2))
    text = f"{raised.value} {raised.value.hint} {provider!r}"
    assert str(status) in str(raised.value)
    for secret in provider.secrets():
        assert secret not in text
    assert "_SECRET" not in text and "-SECRET-" not in text
    assert provider.credential_setting.name in (raised.value.hint or "")


def test_auth_failure_after_accepted_messages_does_not_lose_them(fake_time: Any) -> None:
    handler, _ = scripted(postmark_ok, httpx.Response(401, json={"ErrorCode": 10, "Message": "Bad token"}))
    results = postmark(handler, fake_time, batch_size=1).send_batch(make_messages(2))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.RETRYABLE]


def test_an_unreadable_answer_after_accepted_messages_does_not_lose_them(fake_time: Any) -> None:
    broken = httpx.Response(202, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip"))
    handler, _ = scripted(httpx.Response(202, headers={"X-Message-Id": "sg-1"}), broken)
    results = sendgrid(handler, fake_time, max_retries=0).send_batch(make_messages(2))
    assert [(r.outcome, r.provider_message_id) for r in results] == [
        (Outcome.ACCEPTED, "sg-1"), (Outcome.RETRYABLE, None)]
    assert "unreadable response" in (results[1].error or "")


def test_an_unexpected_error_after_accepted_messages_does_not_lose_them(fake_time: Any) -> None:
    handler, _ = scripted(httpx.Response(202, headers={"X-Message-Id": "sg-1"}), RuntimeError("a bug"))
    results = sendgrid(handler, fake_time).send_batch(make_messages(2))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.RETRYABLE]
    handler, _ = scripted(RuntimeError("a bug"))
    with pytest.raises(RuntimeError):  # nothing went out: the dispatcher's lease covers the batch
        sendgrid(handler, fake_time).send_batch(make_messages(2))


def test_postmark_account_that_cannot_send_is_unusable(fake_time: Any) -> None:
    handler, _ = scripted(httpx.Response(422, json={"ErrorCode": 412, "Message": "Account is pending approval"}))
    with pytest.raises(ProviderError, match="412"):
        postmark(handler, fake_time).send_batch(make_messages(1))


def test_wrong_endpoint_is_unusable_with_a_hint(fake_time: Any) -> None:
    handler, _ = scripted(httpx.Response(404, json={"message": "Domain not found: mg.shop.example.com"}))
    with pytest.raises(ProviderError) as raised:
        mailgun(handler, fake_time).send_batch([make_message(1)])
    assert "LIFECYCLE_MAILGUN_DOMAIN" in (raised.value.hint or "")


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="LIFECYCLE_MAILGUN_DOMAIN"):
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "mailgun", "LIFECYCLE_MAILGUN_API_KEY": "k"}))
    with pytest.raises(ConfigError, match="LIFECYCLE_MAILGUN_REGION") as raised:
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "mailgun", "LIFECYCLE_MAILGUN_API_KEY": "k",
                                         "LIFECYCLE_MAILGUN_DOMAIN": "d", "LIFECYCLE_MAILGUN_REGION": "asia"}))
    assert "us or eu" in str(raised.value)
    with pytest.raises(ConfigError, match="LIFECYCLE_POSTMARK_BASE_URL"):
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "postmark", "LIFECYCLE_POSTMARK_SERVER_TOKEN": "t",
                                         "LIFECYCLE_POSTMARK_BASE_URL": "api.postmarkapp.com"}))
    with pytest.raises(ConfigError, match=r"LIFECYCLE_SENDGRID_API_KEY=\(hidden\)|LIFECYCLE_PROVIDER_RATE_LIMIT"):
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": "sendgrid", "LIFECYCLE_SENDGRID_API_KEY": "k",
                                         "LIFECYCLE_PROVIDER_RATE_LIMIT": "-1"}))


def test_mailgun_region_selects_the_base_url() -> None:
    base = {"LIFECYCLE_PROVIDER": "mailgun", "LIFECYCLE_MAILGUN_API_KEY": "k", "LIFECYCLE_MAILGUN_DOMAIN": "d"}
    with provider_from_settings(Settings(base)) as us:
        assert us.base_url == "https://api.mailgun.net"
    with provider_from_settings(Settings(base | {"LIFECYCLE_MAILGUN_REGION": "EU"})) as eu:
        assert eu.base_url == "https://api.eu.mailgun.net"
    with provider_from_settings(Settings(base | {"LIFECYCLE_MAILGUN_BASE_URL": "http://127.0.0.1:9/"})) as custom:
        assert custom.base_url == "http://127.0.0.1:9"


def test_resend_tag_values_are_sanitised(fake_time: Any) -> None:
    handler, seen = scripted(httpx.Response(200, json={"data": [{"id": "x"}]}))
    resend(handler, fake_time).send_batch([make_message(1, campaign_id="Black Friday / VIP €")])
    (body,) = json.loads(seen[0].read())
    assert body["tags"] == [{"name": "campaign_id", "value": "Black_Friday_VIP"}, {"name": "send_id", "value": "1001"}]
