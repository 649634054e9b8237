"""Postmark end to end over a real socket: a real httpx.Client against bench/postmark_sink.py."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from postmark_sink import PostmarkSink
from provider_messages import make_message, make_messages

from runner.errors import ProviderError
from runner.plugins import PROVIDERS, load
from runner.providers import Outcome
from runner.providers.postmark import PostmarkProvider
from runner.settings import Settings


@pytest.fixture
def sink() -> Iterator[PostmarkSink]:
    with PostmarkSink(token="e2e-token") as running:
        yield running


def provider(sink: PostmarkSink, fake_time: Any, **environ: str) -> PostmarkProvider:
    """Built the way the program builds it: from settings, with its own pooled httpx.Client."""
    settings = Settings({"LIFECYCLE_POSTMARK_SERVER_TOKEN": sink.token,
                         "LIFECYCLE_POSTMARK_BASE_URL": sink.url, **environ})
    assert load(PROVIDERS, "postmark") is PostmarkProvider  # what LIFECYCLE_PROVIDER=postmark selects
    return PostmarkProvider.from_settings(settings, sleep=fake_time.sleep, clock=fake_time.monotonic,
                                          random=random.Random(3))


def test_a_large_send_is_chunked_into_batches_of_500(sink: PostmarkSink, fake_time: Any) -> None:
    messages = make_messages(1_150)
    with provider(sink, fake_time) as postmark:
        results = postmark.send_batch(messages)
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert len({r.provider_message_id for r in results}) == 1_150
    assert sink.requests == [500, 500, 150]
    first = sink.accepted[0]
    assert first["MessageStream"] == "broadcast" and first["Tag"] == "welcome-series"
    assert first["Metadata"] == {"campaign_id": "welcome-series", "send_id": "1001"}
    assert {h["Name"]: h["Value"] for h in first["Headers"]}["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fake_time.sleeps == []


def test_a_500_is_retried_and_nothing_is_sent_twice(sink: PostmarkSink, fake_time: Any) -> None:
    sink.fail_next(500)
    with provider(sink, fake_time) as postmark:
        results = postmark.send_batch(make_messages(20))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert sink.requests == [20] and len(sink.accepted) == 20  # the failed request delivered nothing
    assert len(fake_time.sleeps) == 1


def test_retry_after_from_the_server_is_honoured(sink: PostmarkSink, fake_time: Any) -> None:
    sink.fail_next(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "3"})
    with provider(sink, fake_time) as postmark:
        results = postmark.send_batch(make_messages(5))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert 3.0 <= fake_time.sleeps[0] <= 3.3


def test_partial_failure_resends_only_the_retryable_message(sink: PostmarkSink, fake_time: Any) -> None:
    messages = [make_message(1), make_message(2, to="gone@example.com"), make_message(3, to="busy@example.com"),
                make_message(4)]
    sink.inactive.add("gone@example.com")
    sink.throttle_once.add("busy@example.com")
    with provider(sink, fake_time) as postmark:
        results = postmark.send_batch(messages)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert sink.requests == [4, 1]  # the retry carried only the throttled message
    assert [m["To"] for m in sink.accepted] == ["customer1@example.com", "customer4@example.com", "busy@example.com"]


def test_a_wrong_token_is_a_provider_error_without_the_token(sink: PostmarkSink, fake_time: Any) -> None:
    with (provider(sink, fake_time, LIFECYCLE_POSTMARK_SERVER_TOKEN="wrong-SECRET-token") as postmark,
          pytest.raises(ProviderError) as raised):
        postmark.send_batch(make_messages(2))
    assert "401" in str(raised.value) and "wrong-SECRET-token" not in f"{raised.value} {raised.value.hint}"
    assert sink.accepted == []


def test_a_server_that_went_away_gives_retryable_results(fake_time: Any) -> None:
    with PostmarkSink() as gone:
        url = gone.url
    settings = Settings({"LIFECYCLE_POSTMARK_SERVER_TOKEN": "some-token", "LIFECYCLE_POSTMARK_BASE_URL": url,
                         "LIFECYCLE_HTTP_MAX_RETRIES": "1"})
    with PostmarkProvider.from_settings(settings, sleep=fake_time.sleep, clock=fake_time.monotonic) as postmark:
        results = postmark.send_batch(make_messages(2))
    assert all(r.outcome is Outcome.RETRYABLE and "connection failed" in (r.error or "") for r in results)
    assert len(fake_time.sleeps) == 1
