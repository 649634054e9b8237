"""One contract suite over every provider: HTTP request bodies validated against each provider's
published OpenAPI spec, spec example responses read into the right results, and the basic
send_batch promise (one result per message, in order) for every registered provider."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from provider_messages import make_message, make_messages
from provider_specs import HTTP_CASES, HttpCase, require_specs

from runner.errors import ConfigError, ProviderError
from runner.providers import Outcome, provider_from_settings
from runner.providers.base import Provider
from runner.providers.console import ConsoleProvider
from runner.providers.file import FileProvider
from runner.settings import Settings

CASES = pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])


def mock_provider(case: HttpCase, handler: Any, fake_time: Any, **options: Any) -> Any:
    return case.make(client=httpx.Client(transport=httpx.MockTransport(handler)), sleep=fake_time.sleep,
                     clock=fake_time.monotonic, random=random.Random(7), **options)


def capture(case: HttpCase, fake_time: Any, messages: list, **options: Any) -> tuple[list, list[httpx.Request]]:
    """Send `messages` to a mock that answers every request with a spec-shaped success."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        count = len(case.instance(request)) if case.request_schema().get("type") == "array" else 1
        return case.ok_response(request, count)

    with mock_provider(case, handler, fake_time, **options) as provider:
        results = provider.send_batch(messages)
    return results, seen


@CASES
def test_request_bodies_validate_against_the_published_spec(case: HttpCase, fake_time: Any) -> None:
    require_specs()
    messages = [make_message(1), make_message(2, reply_to="Support <support@shop.example.com>"),
                make_message(3, campaign_id="Black Friday 2024 / VIP € early access", send_id=None)]
    results, requests = capture(case, fake_time, messages)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    validator = case.validator(case.request_schema(), format_checker=case.validator.FORMAT_CHECKER)
    for request in requests:
        assert request.method == "POST"
        assert request.url.path == case.path
        header, value = case.auth
        assert request.headers[header] == value
        assert case.secret not in str(request.url) and case.secret.encode() not in request.read()
        errors = sorted(validator.iter_errors(case.instance(request)), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@CASES
def test_every_message_carries_unsubscribe_headers_campaign_and_send_id(case: HttpCase, fake_time: Any) -> None:
    require_specs()
    messages = make_messages(3)
    _, requests = capture(case, fake_time, messages)
    instances = [case.instance(r) for r in requests]
    headers = [h for body in instances for h in case.message_headers(body)]
    tags = [t for body in instances for t in case.message_tags(body)]
    assert len(headers) == len(tags) == len(messages)
    for message, sent_headers, sent_tags in zip(messages, headers, tags, strict=True):
        assert sent_headers["List-Unsubscribe"] == message.headers["List-Unsubscribe"]
        assert sent_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert sent_headers["X-Campaign-ID"] == message.campaign_id
        assert sent_headers["X-Send-ID"] == str(message.send_id)
        assert sent_tags["campaign_id"] == message.campaign_id
        assert sent_tags["send_id"] == str(message.send_id)
        assert sent_tags["tag"] == message.campaign_id


@CASES
def test_requests_are_chunked_to_the_documented_maximum(case: HttpCase, fake_time: Any) -> None:
    require_specs()
    count = case.cls.max_request_size + 3 if case.cls.max_request_size > 1 else 4
    results, requests = capture(case, fake_time, make_messages(count))
    assert len(results) == count and all(r.outcome is Outcome.ACCEPTED for r in results)
    sizes = [len(case.instance(r)) if case.request_schema().get("type") == "array" else 1 for r in requests]
    assert sum(sizes) == count
    assert max(sizes) == case.cls.max_request_size


@CASES
def test_spec_example_responses_are_read_into_results(case: HttpCase, fake_time: Any) -> None:
    require_specs()
    for status, body, expected in case.examples():
        schema = case.response_schema(status)
        if schema is not None and body is not None:
            jsonschema.validate(body, schema)  # the example (or our stand-in) has the documented shape

        def handler(request: httpx.Request, status: int = status, body: Any = body) -> httpx.Response:
            return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

        provider = mock_provider(case, handler, fake_time, max_retries=0)
        if expected == "unusable":
            with pytest.raises(ProviderError) as raised:
                provider.send_batch([make_message(1)])
            assert case.secret not in str(raised.value) and case.secret not in (raised.value.hint or "")
            continue
        (result,) = provider.send_batch([make_message(1)])
        assert result.outcome == Outcome(expected), (status, body, result)
        if expected == "accepted":
            assert result.provider_message_id, (status, body)
        else:
            assert result.error and case.secret not in result.error


@CASES
def test_success_responses_have_the_documented_shape_and_give_message_ids(case: HttpCase, fake_time: Any) -> None:
    require_specs()
    results, requests = capture(case, fake_time, make_messages(2))
    response = case.ok_response(requests[0], 2 if case.cls.max_request_size > 1 else 1)
    schema = case.response_schema(response.status_code)
    if response.content:
        assert schema is not None
        jsonschema.validate(response.json(), schema)
    assert all(r.provider_message_id for r in results)


@CASES
def test_from_settings_names_the_missing_credential(case: HttpCase) -> None:
    with pytest.raises(ConfigError) as raised:
        provider_from_settings(Settings({"LIFECYCLE_PROVIDER": case.name}))
    assert case.cls.credential_setting.name in str(raised.value)


@CASES
def test_from_settings_reads_every_declared_setting(case: HttpCase) -> None:
    environ = {s.name: s.default for s in case.cls.settings}
    environ |= {case.cls.credential_setting.name: case.secret, "LIFECYCLE_PROVIDER": case.name,
                "LIFECYCLE_MAILGUN_DOMAIN": "mg.shop.example.com", "LIFECYCLE_HTTP_TIMEOUT": "7.5",
                "LIFECYCLE_PROVIDER_BATCH_SIZE": "100000"}
    with provider_from_settings(Settings(environ)) as provider:
        assert isinstance(provider, case.cls)
        assert provider.timeout.read == 7.5
        assert provider.request_size == case.cls.max_request_size  # capped at the documented maximum
        assert case.secret not in repr(provider)


# -- the basic promise, over every registered provider -----------------------------------

def basic_provider(name: str, tmp_path: Path, fake_time: Any) -> Provider:
    """A working instance of a provider that needs no server, by entry-point name."""
    if name == "file":
        return FileProvider.from_settings(Settings({"LIFECYCLE_OUTBOX_DIR": str(tmp_path / "outbox")}))
    if name == "console":
        return ConsoleProvider(stream=io.StringIO())
    case = next(c for c in HTTP_CASES if c.name == name)

    def handler(request: httpx.Request) -> httpx.Response:
        count = len(case.instance(request)) if case.request_schema().get("type") == "array" else 1
        return case.ok_response(request, count)

    return mock_provider(case, handler, fake_time)


BASIC = ["file", "console", *(c.name for c in HTTP_CASES)]


@pytest.mark.parametrize("name", BASIC)
def test_send_batch_returns_one_result_per_message_in_order(name: str, tmp_path: Path, fake_time: Any) -> None:
    if name not in ("file", "console"):
        require_specs()
    with basic_provider(name, tmp_path, fake_time) as provider:
        messages = make_messages(7)
        results = provider.send_batch(messages)
        assert len(results) == 7
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert provider.send_batch([]) == []
        assert provider.max_batch_size >= 1
