"""Fixtures for the webhook tests: each provider's case with fresh keys, a store with ledger rows, and
a snapshot of everything a webhook may change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from shopkit import ShopBuilder
from signers import CASES, Case
from sqlalchemy import func, select

from runner.app import App
from runner.models import Customer, Event, Send, Suppression, SuppressionHistory, WebhookNonce
from runner.settings import Settings
from runner.store import Store

NOW = dt.datetime(2026, 11, 24, 9, 0, 30, tzinfo=dt.UTC)


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]()


@pytest.fixture
def hook_settings(app: App, case: Case) -> Settings:
    return app.settings.with_values(**case.settings)


def add_send(store: Store, customer_id: int, *, provider: str, message_id: str | None = None,
             key: str = "lapse:1") -> int:
    """A ledger row as dispatch leaves it after the provider accepted the message."""
    stamp = dt.datetime(2026, 11, 24, 8, 0)
    with store.session() as session:
        send = Send(campaign_id="winback", occurrence_key=key, customer_id=customer_id, due_at=stamp,
                    status="sent", attempts=1, provider=provider, provider_message_id=message_id,
                    created_at=stamp, updated_at=stamp, sent_at=stamp)
        session.add(send)
        session.commit()
        return send.id  # type: ignore[return-value]


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a webhook request can change: row counts and every customer's consent."""
    with store.session() as session:
        counts = {model.__name__: session.execute(select(func.count()).select_from(model)).scalar()
                  for model in (Event, Suppression, SuppressionHistory, WebhookNonce)}
        consent = dict(session.execute(select(Customer.email, Customer.accepts_marketing)).all())
    return {"counts": counts, "consent": consent}


@pytest.fixture
def ada(shop: ShopBuilder) -> int:
    return shop.customer("ada@example.com")
