"""The Net Promoter Score question in an email: signed score links, and recording what a click answers.

Each of the eleven links (0 to 10) carries a token signed like the unsubscribe link
(`runner.links.unsubscribe.signed_token`) over "nps:<send id>:<score>", so a score can be given only
for an email that was sent, and only through a link that email carried; the "nps:" prefix keeps
a score link from ever passing as an unsubscribe link, and the reverse. The web service
(`runner.web.nps`) calls `answer` for each click: the first click records the score, a later
click on another score of the same email changes it and its time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from ..models import Customer, NpsResponse, Send
from ..privacy.forget import placeholder
from ..sql import dialect_insert
from ..store import Store, utc_naive
from .unsubscribe import InvalidToken, signed_payload, signed_token

__all__ = ["QUESTION", "SCORES", "Answer", "Outcome", "answer", "nps_context", "score_token", "score_url",
           "verify_score"]

QUESTION = "How likely are you to recommend us to a friend?"
SCORES = range(11)
_PREFIX = b"nps:"


def score_token(key: bytes, send_id: int, score: int) -> str:
    """The token of the link that answers `score` for the email of send `send_id`."""
    return signed_token(key, b"%s%d:%d" % (_PREFIX, send_id, score))


def verify_score(key: bytes, token: str) -> tuple[int, int]:
    """(send id, score) from a score link's token; raises InvalidToken when it was not signed with `key`
    or is not a score link."""
    payload = signed_payload(key, token)
    send, sep, score = payload.removeprefix(_PREFIX).partition(b":")
    if (not payload.startswith(_PREFIX) or not sep or not send.isdigit() or not score.isdigit()
            or int(score) not in SCORES):
        raise InvalidToken("invalid score link: malformed payload")
    return int(send), int(score)


def score_url(public_url: str, key: bytes, send_id: int, score: int) -> str:
    return f"{public_url.rstrip('/')}/nps/{score_token(key, send_id, score)}"


def nps_context(public_url: str, key: bytes, send_id: int | None) -> dict[str, Any]:
    """The template's `nps`: the question and a link per score. Without a send (previews, test sends)
    the links are samples the web service answers as not valid, so nothing is ever recorded for them."""
    base = public_url.rstrip("/")
    links = [{"score": score, "url": score_url(base, key, send_id, score) if send_id is not None
              else f"{base}/nps/sample-{score}"} for score in SCORES]
    return {"question": QUESTION, "links": links}


class Outcome(StrEnum):
    """What one click did (the label of the `lifecycle_nps_answers_total` counter)."""

    RECORDED = "recorded"  # the email's first answer
    CHANGED = "changed"  # another score than the one recorded: it replaces it
    UNCHANGED = "unchanged"  # the score already recorded, clicked again
    UNKNOWN = "unknown"  # no such send, or its customer was forgotten: nothing recorded


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    score: int
    send_id: int


def answer(store: Store, send_id: int, score: int, now: dt.datetime) -> Answer:
    """Record `score` as the answer of the email of send `send_id` at `now` (insert, or change the
    score and its time); nothing for a send that does not exist or whose customer was forgotten."""
    now = utc_naive(now)
    with store.session() as session:
        found = session.execute(select(Send.customer_id, Send.campaign_id, Customer.email)
                                .join(Customer, Customer.id == Send.customer_id).where(Send.id == send_id)).first()
        if found is None or found.email == placeholder(found.customer_id):
            return Answer(Outcome.UNKNOWN, score, send_id)
        before = session.execute(select(NpsResponse.score).where(NpsResponse.send_id == send_id)).scalar()
        if before == score:
            return Answer(Outcome.UNCHANGED, score, send_id)
        _upsert(session, send_id, found.customer_id, found.campaign_id, score, now)
        session.commit()
    return Answer(Outcome.RECORDED if before is None else Outcome.CHANGED, score, send_id)


def _upsert(session: Session, send_id: int, customer_id: int, campaign_id: str, score: int,
            now: dt.datetime) -> None:
    """One statement, so two clicks at once leave one row (the later score), never two or an error."""
    insert = dialect_insert(session.connection(), NpsResponse).values(
        send_id=send_id, customer_id=customer_id, campaign_id=campaign_id, score=score, answered_at=now,
        changed_at=now)
    session.execute(insert.on_conflict_do_update(
        index_elements=["send_id"], set_={"score": insert.excluded.score, "changed_at": insert.excluded.changed_at}))
