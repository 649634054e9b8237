"""POST /webhooks/{provider} through Starlette's TestClient and on the real server on 127.0.0.1."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from conftest import NOW, snapshot
from prometheus_client import REGISTRY
from shopkit import ShopBuilder
from signers import Case, Event, resend_case, sendgrid_case
from starlette.testclient import TestClient
from webkit import serving, web_context

from runner.settings import Settings
from runner.store import Store
from runner.web import create_app


def counted(provider: str, event_type: str) -> float:
    return REGISTRY.get_sample_value("lifecycle_webhook_events_total",
                                     {"provider": provider, "type": event_type}) or 0.0


@pytest.fixture
def web_store(store: Store) -> Store:
    ShopBuilder(store).customer("ada@example.com")
    return store


def client(store: Store, settings: dict[str, str]) -> TestClient:
    return TestClient(create_app(web_context(store, settings=Settings(settings), now=NOW)))


def test_each_provider_is_heard_and_counted(web_store: Store, case: Case):
    before = counted(case.name, "bounced")
    with client(web_store, case.settings) as http:
        headers, body = case.request([Event("bounced", "ada@example.com", "1001")], NOW)
        answer = http.post(f"/webhooks/{case.name}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"provider": case.name, "recorded": {"bounced": 1}, "duplicates": 0,
                                 "unmatched": 1, "ignored": {}, "suppressed": 1}
        again = http.post(f"/webhooks/{case.name}", content=body, headers=headers)
    assert counted(case.name, "bounced") == before + 1
    if case.name != "mailgun":  # Mailgun's token is spent: the same request again is refused
        assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert snapshot(web_store)["counts"]["Suppression"] == 1


def test_refusals_answer_with_their_status_and_change_nothing(web_store: Store, case: Case,
                                                               caplog: pytest.LogCaptureFixture):
    headers, body = case.request([Event("bounced", "ada@example.com", "1001")], NOW)
    before = snapshot(web_store)
    with client(web_store, case.settings) as http, caplog.at_level(logging.WARNING, "lifecycle.web"):
        foreign_headers, foreign_body = case.foreign([Event("bounced", "ada@example.com", "1001")], NOW)
        forged = http.post(f"/webhooks/{case.name}", content=foreign_body, headers=foreign_headers)
        unknown = http.post("/webhooks/sparkpost", content=body, headers=headers)
        wrong_method = http.get(f"/webhooks/{case.name}")
    with client(web_store, {}) as http:
        unconfigured = http.post(f"/webhooks/{case.name}", content=body, headers=headers)
    with client(web_store, case.settings | {"LIFECYCLE_HTTP_MAX_BODY_BYTES": str(len(body) - 1)}) as http:
        oversized = http.post(f"/webhooks/{case.name}", content=body, headers=headers)
    assert forged.status_code == 401 and "refused" in forged.json()["error"]
    assert unknown.status_code == 404 and wrong_method.status_code == 405
    assert unconfigured.status_code == 503 and "not configured" in unconfigured.json()["error"]
    assert oversized.status_code == 413
    assert snapshot(web_store) == before
    assert any(f"webhook '{case.name}': {case.name} webhook refused" in r.getMessage() and "answered 401"
               in r.getMessage() for r in caplog.records)


def test_an_unavailable_store_answers_503_so_the_provider_retries(tmp_path: Path):
    case = sendgrid_case()
    missing = Store(f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}")
    with client(missing, case.settings) as http:
        answer = http.post("/webhooks/sendgrid", content=(request := case.request(
            [Event("bounced", "ada@example.com", "1001")], NOW))[1], headers=request[0])
    assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
    assert "nowhere" not in answer.text


def test_the_real_server_takes_a_signed_batch(web_store: Store):
    sendgrid, resend = sendgrid_case(), resend_case()
    web = web_context(web_store, settings=Settings(sendgrid.settings | resend.settings), now=NOW)
    batch = [Event("delivered", "ada@example.com", "2001"), Event("opened", "ada@example.com", "2002"),
             Event("bounced", "ada@example.com", "2003")]
    with serving(web) as server, httpx.Client(base_url=server.url) as http:
        headers, body = sendgrid.request(batch, NOW)
        answer = http.post("/webhooks/sendgrid", content=body, headers=headers)
        assert answer.status_code == 200
        assert answer.json()["recorded"] == {"delivered": 1, "opened": 1, "bounced": 1}
        headers, body = resend.request([Event("complained", "ada@example.com", "msg_3")], NOW)
        tampered = http.post("/webhooks/resend", content=body.replace(b"complained", b"delivered"), headers=headers)
        assert tampered.status_code == 401
    counts = snapshot(web_store)["counts"]
    assert (counts["Event"], counts["Suppression"]) == (3, 1)
