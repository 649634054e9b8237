"""Every provider's webhook refuses what it cannot authenticate, and what it refuses changes nothing.

Keys are made for each test (signers.py). Postmark signs neither the body nor a time: its webhook
URL carries basic auth credentials, so a forged body or a stale time cannot be told from a
genuine one there; its cases check the credentials instead.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import NOW, add_send, snapshot
from signers import Case, Event

from runner.app import App
from runner.settings import Settings
from runner.suppressions import remove_suppression
from runner.webhooks import (
    UnknownWebhookProvider,
    WebhookMalformed,
    WebhookNotConfigured,
    WebhookTooLarge,
    WebhookUnauthorized,
    receive,
)

SIGNED = ["mailgun", "resend", "sendgrid"]


def bounce(send_id: int | None = None, event_id: str = "1001", email: str = "ada@example.com") -> Event:
    return Event("bounced", email, event_id, send_id=send_id)


def refused(app: App, settings: Settings, case: Case, headers: dict[str, str], body: bytes,
            error: type[Exception] = WebhookUnauthorized) -> None:
    """The request raises `error` and leaves the store exactly as it was."""
    before = snapshot(app.store)
    with pytest.raises(error) as caught:
        receive(app.store, settings, case.name, headers, body, NOW)
    assert caught.value.status == {WebhookUnauthorized: 401, WebhookMalformed: 400, WebhookTooLarge: 413,
                                   WebhookNotConfigured: 503, UnknownWebhookProvider: 404}[error]
    assert snapshot(app.store) == before


def test_a_valid_request_is_recorded_and_suppresses(app: App, case: Case, hook_settings: Settings, ada: int):
    send_id = add_send(app.store, ada, provider=case.name)
    receipt = receive(app.store, hook_settings, case.name, *case.request([bounce(send_id)], NOW), NOW)
    assert receipt.recorded == {"bounced": 1} and receipt.suppressed == 1
    assert (receipt.duplicates, receipt.unmatched) == (0, 0)
    after = snapshot(app.store)
    assert after["counts"]["Event"] == 1 and after["counts"]["Suppression"] == 1
    assert after["consent"]["ada@example.com"] is False


@pytest.mark.parametrize("case", SIGNED, indirect=True)
def test_a_forged_body_is_refused(app: App, case: Case, hook_settings: Settings, ada: int):
    headers, body = case.request([bounce()], NOW)
    # Mailgun's signature covers only its timestamp and token, so the genuine request is seen first:
    # its token is then spent, and the same signature over another event is refused.
    receive(app.store, hook_settings, case.name, headers, body, NOW)
    forged = body.replace(b"ada@example.com", b"bob@example.com").replace(b"1001", b"1002")
    assert forged != body
    refused(app, hook_settings, case, headers, forged)


def test_mailgun_signature_over_another_timestamp_is_refused(app: App, ada: int):
    from signers import mailgun_case

    case = mailgun_case()
    settings = app.settings.with_values(**case.settings)
    headers, body = case.request([bounce()], NOW)
    payload = json.loads(body)
    payload["signature"]["timestamp"] = str(int(payload["signature"]["timestamp"]) + 1)
    refused(app, settings, case, headers, json.dumps(payload).encode())


def test_a_request_signed_with_another_key_is_refused(app: App, case: Case, hook_settings: Settings, ada: int):
    refused(app, hook_settings, case, *case.foreign([bounce()], NOW))


def test_an_unsigned_request_is_refused(app: App, case: Case, hook_settings: Settings, ada: int):
    headers, body = case.request([bounce()], NOW)
    unsigned = {k: v for k, v in headers.items() if k.lower() == "content-type"}
    if case.name == "mailgun":
        payload = json.loads(body)
        del payload["signature"]
        body = json.dumps(payload).encode()
    refused(app, hook_settings, case, unsigned, body)


@pytest.mark.parametrize("case", SIGNED, indirect=True)
@pytest.mark.parametrize("offset", [dt.timedelta(minutes=-6), dt.timedelta(minutes=6)])
def test_a_stale_or_future_timestamp_is_refused(app: App, case: Case, hook_settings: Settings, ada: int,
                                                offset: dt.timedelta):
    refused(app, hook_settings, case, *case.request([bounce()], NOW + offset))


@pytest.mark.parametrize("case", SIGNED, indirect=True)
def test_a_timestamp_inside_the_tolerance_is_accepted(app: App, case: Case, hook_settings: Settings, ada: int):
    receipt = receive(app.store, hook_settings, case.name,
                      *case.request([bounce()], NOW - dt.timedelta(minutes=4, seconds=59)), NOW)
    assert receipt.recorded == {"bounced": 1}


def test_a_replayed_event_changes_nothing_the_second_time(app: App, case: Case, hook_settings: Settings,
                                                          ada: int):
    send_id = add_send(app.store, ada, provider=case.name)
    receive(app.store, hook_settings, case.name, *case.request([bounce(send_id)], NOW), NOW)
    with app.store.session() as session:  # taken off the list by hand since; the replay must not undo that
        remove_suppression(session, "ada@example.com", NOW.replace(tzinfo=None), source="manual")
        session.commit()
    before = snapshot(app.store)
    # posted again as the provider retries it (Mailgun signs each attempt with a new token)
    later = NOW + dt.timedelta(seconds=40)
    receipt = receive(app.store, hook_settings, case.name, *case.request([bounce(send_id)], later), later)
    assert receipt.recorded == {} and receipt.duplicates == 1 and receipt.suppressed == 0
    after = snapshot(app.store)
    assert after["counts"]["WebhookNonce"] == before["counts"]["WebhookNonce"] + (case.name == "mailgun")
    after["counts"]["WebhookNonce"] = before["counts"]["WebhookNonce"]
    assert after == before


def test_mailgun_refuses_the_same_signed_request_twice(app: App, ada: int):
    from signers import mailgun_case

    case = mailgun_case()
    settings = app.settings.with_values(**case.settings)
    headers, body = case.request([bounce()], NOW)
    receive(app.store, settings, case.name, headers, body, NOW)
    refused(app, settings, case, headers, body)


def test_an_oversized_body_is_refused(app: App, case: Case, hook_settings: Settings, ada: int):
    headers, body = case.request([bounce()], NOW)
    small = hook_settings.with_values(HTTP_MAX_BODY_BYTES=str(len(body) - 1))
    refused(app, small, case, headers, body, WebhookTooLarge)
    assert receive(app.store, hook_settings.with_values(HTTP_MAX_BODY_BYTES=str(len(body))), case.name,
                   headers, body, NOW).recorded == {"bounced": 1}


def test_a_malformed_body_is_refused(app: App, case: Case, hook_settings: Settings, ada: int):
    if case.sign is None:  # Mailgun: the signature is inside the body, so a body that is not JSON has none
        refused(app, hook_settings, case, {}, b"{not json", WebhookMalformed)
        return
    for garbage in (b"{not json", b"[1, 2]", b'"text"'):
        refused(app, hook_settings, case, case.sign(garbage, NOW), garbage, WebhookMalformed)


def test_a_batch_with_one_malformed_event_changes_nothing(app: App, ada: int):
    from signers import sendgrid_case, sendgrid_json

    case = sendgrid_case()
    body = json.dumps([sendgrid_json(bounce()), "not an event"]).encode()
    refused(app, app.settings.with_values(**case.settings), case, case.sign(body, NOW), body, WebhookMalformed)


def test_an_unconfigured_webhook_answers_503(app: App, case: Case, ada: int):
    refused(app, app.settings, case, *case.request([bounce()], NOW), WebhookNotConfigured)


@pytest.mark.parametrize("case", ["resend", "sendgrid"], indirect=True)
def test_a_malformed_key_setting_answers_503_without_showing_a_secret(app: App, case: Case, ada: int):
    (name,) = case.settings
    settings = app.settings.with_values(**{name: "whsec_!!not-base64!!"})
    with pytest.raises(WebhookNotConfigured) as caught:
        receive(app.store, settings, case.name, *case.request([bounce()], NOW), NOW)
    assert name in str(caught.value)
    if case.name == "resend":
        assert "!!not-base64!!" not in str(caught.value) + str(caught.value.hint)


def test_an_unknown_provider_answers_404(app: App, ada: int):
    with pytest.raises(UnknownWebhookProvider) as caught:
        receive(app.store, app.settings, "sparkpost", {}, b"{}", NOW)
    assert caught.value.status == 404 and "postmark" in str(caught.value.hint)
