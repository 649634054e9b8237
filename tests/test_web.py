"""The web service through Starlette's TestClient: health, metrics, shared headers, body limit, access log."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from shopkit import ROOT, ShopBuilder, utc
from sqlmodel import select
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient
from webkit import KEY, web_context

from runner.app import App
from runner.errors import ProviderError
from runner.links.unsubscribe import sign
from runner.models import Suppression
from runner.providers.base import OutgoingMessage, Provider, SendResult
from runner.settings import Settings
from runner.store import Store
from runner.telemetry import count_webhook_event
from runner.web import ROUTE_GROUPS, WebContext, create_app
from runner.web.base import SECURITY_HEADERS


def client_for(web: WebContext) -> TestClient:
    return TestClient(create_app(web), base_url="http://mail.example.com")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# ---------------------------------------------------------------- /healthz

def test_healthz_is_ok_when_the_store_answers(store: Store) -> None:
    with client_for(web_context(store)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_is_503_when_the_store_is_unavailable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = Store(f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}")
    with client_for(web_context(missing)) as client, caplog.at_level(logging.WARNING, "lifecycle.web"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "checks": {"database": "unavailable"}}
    assert "nowhere" not in response.text  # where the store lives is for the log, not for the public
    assert any("healthz: the store is unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("alive", "status", "state"), [(True, 200, "ok"), (False, 503, "stopped")])
def test_healthz_reports_the_scheduler_beside_it(store: Store, alive: bool, status: int, state: str) -> None:
    with client_for(web_context(store, scheduler_alive=lambda: alive)) as client:
        response = client.get("/healthz")
    assert response.status_code == status
    assert response.json()["checks"] == {"database": "ok", "scheduler": state}


# ---------------------------------------------------------------- /metrics

class ByAddressProvider(Provider):
    """Accepts every message except those whose address names an outcome: retry@ and reject@."""

    name = "by-address"
    max_batch_size = 10

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        out = []
        for message in messages:
            if message.to.startswith("retry@"):
                out.append(SendResult.retryable("503 from the provider"))
            elif message.to.startswith("reject@"):
                out.append(SendResult.permanent("422 invalid recipient"))
            else:
                out.append(SendResult.accepted(f"id-{message.send_id}"))
        return out


def process_sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_after_a_tick(app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    for name in ("ada", "retry", "reject"):
        shop.order(shop.customer(f"{name}@example.com"), utc(2026, 11, 20, 9, 0))
    now = utc(2026, 11, 20, 12, 0)
    before = {kind: process_sample("lifecycle_provider_errors_total", provider="by-address", kind=kind)
              for kind in ("retryable", "permanent")}
    ticks_before = process_sample("lifecycle_tick_duration_seconds_count", campaign="thank-you")

    app.tick(now, app.campaigns(now), ByAddressProvider())

    at_tick = web_context(app.store, now=now)
    with client_for(at_tick) as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("lifecycle_store_up", ())] == 1
    for status, count in (("sent", 1), ("planned", 1), ("failed", 1)):
        assert found[("lifecycle_sends", (("campaign", "thank-you"), ("status", status)))] == count
    assert found[("lifecycle_due_backlog", (("campaign", "thank-you"),))] == 0  # the retry waits for its backoff
    assert found[("lifecycle_campaign_last_evaluated_timestamp_seconds", (("campaign", "thank-you"),))] == (
        now.timestamp())
    assert found[("lifecycle_tick_duration_seconds_count", (("campaign", "thank-you"),))] == ticks_before + 1
    for kind in ("retryable", "permanent"):
        assert found[("lifecycle_provider_errors_total", (("kind", kind), ("provider", "by-address")))] == (
            before[kind] + 1)

    an_hour_later = web_context(app.store, now=now + dt.timedelta(hours=1))
    with client_for(an_hour_later) as client:
        found = samples(client.get("/metrics").text)
    assert found[("lifecycle_due_backlog", (("campaign", "thank-you"),))] == 1


def test_metrics_answer_when_the_store_is_unavailable(tmp_path: Path) -> None:
    missing = Store(f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}")
    with client_for(web_context(missing)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)
    assert found[("lifecycle_store_up", ())] == 0
    assert not any(name == "lifecycle_sends" for name, _ in found)


def test_metrics_count_webhook_events_by_provider_and_type(store: Store) -> None:
    labels = (("provider", "sendgrid"), ("type", "bounce"))
    with client_for(web_context(store)) as client:
        before = samples(client.get("/metrics").text).get(("lifecycle_webhook_events_total", labels), 0.0)
        count_webhook_event("sendgrid", "bounce")
        count_webhook_event("sendgrid", "bounce")
        after = samples(client.get("/metrics").text)[("lifecycle_webhook_events_total", labels)]
    assert after == before + 2


def test_metrics_speak_openmetrics_when_asked(store: Store) -> None:
    with client_for(web_context(store)) as client:
        response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


# ---------------------------------------------------------------- shared middleware

def test_every_answer_carries_the_security_headers(store: Store) -> None:
    settings = Settings({"LIFECYCLE_HTTP_MAX_BODY_BYTES": "16"})
    token = sign(KEY, 1, "ada@example.com")
    with client_for(web_context(store, settings=settings)) as client:
        answers = [client.get("/healthz"), client.get("/metrics"), client.get("/nowhere"),
                   client.get(f"/unsubscribe/{token}"), client.get("/unsubscribe/garbage"),
                   client.post(f"/unsubscribe/{token}", content=b"x" * 17)]
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 400, 413]
    for answer in answers:
        for name, value in SECURITY_HEADERS:
            assert answer.headers[name] == value, (answer.request.url, name)


def suppressed(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.exec(select(Suppression.email)).all())


@pytest.fixture
def ada(store: Store) -> int:
    return ShopBuilder(store).customer("ada@example.com")


def test_a_body_over_the_limit_is_refused_before_anything_changes(store: Store, ada: int) -> None:
    settings = Settings({"LIFECYCLE_HTTP_MAX_BODY_BYTES": "64"})
    path = f"/unsubscribe/{sign(KEY, ada, 'ada@example.com')}"

    def chunked(total: int) -> Iterator[bytes]:  # no Content-Length: the limit must count what streams in
        for _ in range(total // 16):
            yield b"List-Unsubscribe"

    with client_for(web_context(store, settings=settings)) as client:
        declared = client.post(path, content=b"List-Unsubscribe=One-Click" * 3)
        streamed = client.post(path, content=chunked(128))
        assert "content-length" not in streamed.request.headers
        bad_length = client.post(path, content=b"", headers={"Content-Length": "-1"})
        assert (declared.status_code, streamed.status_code, bad_length.status_code) == (413, 413, 400)
        assert "larger than 64 bytes" in declared.text
        assert suppressed(store) == []
        within = client.post(path, content=b"List-Unsubscribe=One-Click")
    assert within.status_code == 200
    assert suppressed(store) == ["ada@example.com"]


def test_the_access_log_is_one_line_per_request_with_the_token_masked(store: Store, ada: int,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    token = sign(KEY, ada, "ada@example.com")
    with client_for(web_context(store)) as client, caplog.at_level(logging.INFO, "lifecycle.web"):
        client.get(f"/unsubscribe/{token}?utm_source=email")
        client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click")
    lines = [r.getMessage() for r in caplog.records if r.name == "lifecycle.web"]
    assert len(lines) == 2
    assert '"GET /unsubscribe/<token> HTTP/1.1" 200' in lines[0]
    assert '"POST /unsubscribe/<token> HTTP/1.1" 200' in lines[1]
    assert not any(token in line or token.split(".")[1] in line or "utm_source" in line for line in lines)


def test_route_groups_compose(store: Store) -> None:
    """A new group is one more `routes(web)` in the list, behind the same middleware as the others."""

    def extra(web: WebContext) -> list[BaseRoute]:
        async def echo(request):  # type: ignore[no-untyped-def]
            return PlainTextResponse(f"{len(await request.body())} bytes for {web.signing_key.decode()}")

        return [Route("/echo/{name}", echo, methods=["POST"])]

    settings = Settings({"LIFECYCLE_HTTP_MAX_BODY_BYTES": "8"})
    app = create_app(web_context(store, settings=settings), [*ROUTE_GROUPS, extra])
    with TestClient(app) as client:
        assert client.post("/echo/postmark", content=b"12345678").text == "8 bytes for test-signing-key"
        assert client.post("/echo/postmark", content=b"123456789").status_code == 413
        assert client.post("/echo/postmark").headers["x-frame-options"] == "DENY"
        assert client.get("/healthz").status_code == 200



class UnusableProvider(ByAddressProvider):
    name = "unusable"

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise ProviderError("401 Unauthorized: the API token was refused", "check the token")


def test_a_provider_refusing_a_whole_batch_counts_as_unusable(app: App, shop: ShopBuilder,
                                                               campaigns_dir: Path) -> None:
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    shop.order(shop.customer("ada@example.com"), utc(2026, 11, 20, 9, 0))
    now = utc(2026, 11, 20, 12, 0)
    before = process_sample("lifecycle_provider_errors_total", provider="unusable", kind="unusable")
    with pytest.raises(ProviderError):
        app.tick(now, app.campaigns(now), UnusableProvider())
    assert process_sample("lifecycle_provider_errors_total", provider="unusable", kind="unusable") == before + 1
