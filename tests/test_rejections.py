"""A provider's permanent rejection of an address suppresses it at once, in the same transaction
as the result: the rest of the campaign and every later campaign of the same tick skip it. A
rejection of the message suppresses nobody. Real store, the real Postmark provider on
httpx.MockTransport."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import httpx
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import select

from runner.app import App
from runner.models import ConsentChange, Customer, Send, Suppression
from runner.providers.postmark import PostmarkProvider

NOW = utc(2026, 11, 20, 12, 0)
INACTIVE = ("You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: "
            "gone@example.com. Inactive recipients are ones that have generated a hard bounce, a spam "
            "complaint, or a manual suppression.")
NO_SIGNATURE = ("The 'From' address you supplied (hello@shop.example.com) is not a Sender Signature on your "
                "account. Please add and confirm this address in order to be able to use it in the 'From' field "
                "of your messages.")


class PostmarkStandIn:
    """Answers /email/batch like Postmark: per message, an error for some recipients, else OK."""

    def __init__(self, errors: dict[str, tuple[int, str]]) -> None:
        self.errors = errors  # recipient ("*" for all) -> (ErrorCode, Message)
        self.recipients: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answers = []
        for n, message in enumerate(json.loads(request.read())):
            self.recipients[message["To"]] += 1
            code, text = self.errors.get(message["To"]) or self.errors.get("*") or (0, "OK")
            answers.append({"ErrorCode": code, "Message": text} if code else
                           {"To": message["To"], "SubmittedAt": "2026-11-20T12:00:00Z", "MessageID": f"pm-{n}",
                            "ErrorCode": 0, "Message": "OK"})
        return httpx.Response(200, json=answers)

    def provider(self) -> PostmarkProvider:
        return PostmarkProvider("pm-token", client=httpx.Client(transport=httpx.MockTransport(self)), max_retries=0,
                                sleep=lambda seconds: None, random=random.Random(1))


def two_campaigns(campaigns_dir: Path) -> None:
    """Two campaigns on the same orders, due at the same instant; a-thanks runs first in a tick."""
    for campaign_id in ("a-thanks", "b-thanks"):
        write_campaign(campaigns_dir, f"""
            id: {campaign_id}
            name: Thanks {campaign_id}
            trigger: {{type: order, delay: 1h}}
            message: {{template: thank_you, subject: "Thanks {{{{ customer.first_name }}}}"}}
        """)


def rows(app: App) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """(campaign, email) -> [(status, skip reason or last error)] in ledger order."""
    found: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    with app.store.session() as session:
        for send, email in session.execute(select(Send, Customer.email).join(Customer, Customer.id == Send.customer_id)
                                           .order_by(Send.id)):
            found.setdefault((send.campaign_id, email), []).append((send.status, send.skip_reason or send.last_error))
    return found


def test_an_inactive_recipient_is_suppressed_for_the_rest_of_the_campaign_and_the_next_one(
        app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    two_campaigns(campaigns_dir)
    app.settings = app.settings.with_values(BATCH_SIZE="1")  # every send is its own batch
    gone, ada = shop.customer("gone@example.com"), shop.customer("ada@example.com")
    for customer in (gone, gone, ada):
        shop.order(customer, utc(2026, 11, 20, 9, 0))
    postmark = PostmarkStandIn({"gone@example.com": (406, INACTIVE)})

    report = {row["campaign"]: row for row in app.tick(NOW, app.campaigns(NOW), postmark.provider()).rows()}

    assert postmark.recipients == {"gone@example.com": 1, "ada@example.com": 2}
    ledger = rows(app)
    (first_status, first_error), second = ledger[("a-thanks", "gone@example.com")]
    assert first_status == "failed" and (first_error or "").startswith("postmark: ErrorCode 406: ")
    assert second == ("skipped", "suppressed")  # the next batch of the same campaign
    assert ledger[("b-thanks", "gone@example.com")] == [("skipped", "suppressed")] * 2  # the next campaign
    assert {status for status, _ in ledger[("b-thanks", "ada@example.com")]} == {"sent"}
    assert report["a-thanks"]["failed"] == 1 and report["b-thanks"]["skipped"] == {"suppressed": 2}
    with app.store.session() as session:
        (suppression,) = session.exec(select(Suppression)).scalars()
        consent = dict(session.execute(select(Customer.email, Customer.accepts_marketing)).all())
    assert (suppression.email, suppression.reason, suppression.source) == ("gone@example.com", "bounced",
                                                                           "provider-rejection:postmark")
    assert "postmark: ErrorCode 406" in (suppression.detail or "") and "spam complaint" in (suppression.detail or "")
    assert "a-thanks" in (suppression.detail or "")
    assert consent == {"gone@example.com": False, "ada@example.com": True}
    with app.store.session() as session:
        (change,) = session.exec(select(ConsentChange)).scalars()
    assert (change.customer_id, change.accepted_after, change.source) == (gone, False, "provider-rejection:postmark")


def test_a_rejection_of_the_message_suppresses_nobody(app: App, shop: ShopBuilder, campaigns_dir: Path) -> None:
    two_campaigns(campaigns_dir)
    for email in ("gone@example.com", "ada@example.com"):
        shop.order(shop.customer(email), utc(2026, 11, 20, 9, 0))
    postmark = PostmarkStandIn({"*": (400, NO_SIGNATURE)})

    app.tick(NOW, app.campaigns(NOW), postmark.provider())

    assert postmark.recipients == {"gone@example.com": 2, "ada@example.com": 2}  # both campaigns tried both
    assert {status for row in rows(app).values() for status, _ in row} == {"failed"}
    with app.store.session() as session:
        assert session.exec(select(Suppression)).scalars().all() == []
        assert set(session.execute(select(Customer.accepts_marketing)).scalars()) == {True}
