"""Builds realistic OutgoingMessages for provider tests (their `mime` is a real multipart/alternative)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from runner.providers.base import OutgoingMessage

SHOP_FROM = "Beispiel Shop <hello@shop.example.com>"


@cache  # building MIME is slow; the messages are immutable in use, so tests share them
def make_message(n: int = 1, *, to: str | None = None, campaign_id: str = "welcome-series",
                 send_id: int | None = None, idempotency_key: str | None = None,
                 reply_to: str | None = None, is_test: bool = False) -> OutgoingMessage:
    """Message number `n`: its own recipient, subject, body, send id and unsubscribe link."""
    to = to or f"customer{n}@example.com"
    send_id = 1000 + n if send_id is None else send_id
    subject = f"Grüße, customer {n}: 10 € off your next order"
    text = f"Hello customer {n},\n\nHere is 10 € off.\n\nUnsubscribe: https://shop.example.com/u/tok{n}\n"
    html = (f"<html><body><p>Hello customer {n},</p><p>Here is <b>10 €</b> off.</p>"
            f"<p><a href=\"https://shop.example.com/u/tok{n}\">Unsubscribe</a></p></body></html>")
    headers = {
        "List-Unsubscribe": f"<https://shop.example.com/u/tok{n}>, <mailto:u@shop.example.com?subject=tok{n}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Campaign-ID": campaign_id,
        "X-Send-ID": str(send_id),
    }
    return OutgoingMessage(
        idempotency_key=idempotency_key or f"ledger-{send_id}", campaign_id=campaign_id, send_id=send_id,
        to=to, from_=SHOP_FROM, subject=subject, html=html, text=text, date=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        reply_to=reply_to,
        headers=headers, is_test=is_test)


def make_messages(count: int, start: int = 1, **options: object) -> list[OutgoingMessage]:
    return [make_message(n, **options) for n in range(start, start + count)]  # type: ignore[arg-type]
