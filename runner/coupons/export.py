"""`lifecycle coupons export`: the generated codes of the ledger's sends, as a CSV for the shop to load.

The columns are those of the Discounts sheet that Shopify's bulk import apps read (Matrixify and
the apps with its format): `Title` names the discount the codes belong to, `Command` MERGE adds
them to it (creating it when it does not exist), `Code` is one code a row. docs/coupons.md says
how to load them.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from ..campaigns import Campaign
from ..engine import find_occurrences
from ..models import Send, SendStatus
from ..triggers.base import Window
from .generated import generated_code

COLUMNS = ("Title", "Command", "Code")
COMMAND = "MERGE"
CHUNK = 1000


def title(campaign: Campaign) -> str:
    """The Shopify discount a campaign's generated codes belong to."""
    spec = campaign.coupon.generate if campaign.coupon else None
    return (spec.title if spec else None) or campaign.id


def generating(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """The campaigns whose message generates its coupon codes."""
    return [c for c in campaigns if c.coupon is not None and c.coupon.generate is not None]


def ledger_codes(session: Session, campaign: Campaign, secret: bytes, since: dt.datetime | None) -> Iterator[str]:
    """The code of every send of a generating campaign that was or may be emailed (all but skipped ones),
    planned at or after `since`; streamed in chunks."""
    spec = campaign.coupon.generate if campaign.coupon else None
    if spec is None:
        return
    query = (select(Send.occurrence_key).where(Send.campaign_id == campaign.id, Send.status != SendStatus.SKIPPED)
             .where(*([Send.created_at >= since] if since is not None else [])).order_by(Send.id))
    for key in session.execute(query.execution_options(yield_per=CHUNK)).scalars():
        yield generated_code(secret, spec, campaign.id, key)


def due_codes(session: Session, campaign: Campaign, secret: bytes, window: Window) -> Iterator[str]:
    """The code of every occurrence a tick at window.now would plan to send (not skip) that the ledger
    does not hold yet: codes to load before their emails go out."""
    spec = campaign.coupon.generate if campaign.coupon else None
    if spec is None:
        return
    for occurrence in find_occurrences(session, campaign, window):
        if occurrence.status is SendStatus.PLANNED:
            yield generated_code(secret, spec, campaign.id, occurrence.occurrence_key)


def write_codes(path: Path, rows: Iterable[tuple[str, str]]) -> int:
    """Write (title, code) rows as the discount import CSV; returns how many codes were written."""
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for discount, code in rows:
            writer.writerow((discount, COMMAND, code))
            written += 1
    return written
