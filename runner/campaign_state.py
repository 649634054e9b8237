"""A campaign's state in the store: when it was first seen, when it was last evaluated, who evaluates it now.

One tick or worker at a time evaluates a campaign (finds what is due and plans it), under a
lease in its campaign_state row: `take_evaluation` records the campaign as seen and takes the
lease in one short committed transaction, before any planning (`record_seen` records a whole
campaign set as seen first, before any of it is evaluated); `finish_evaluation` gives it back
and, when the evaluation completed, moves the campaign's evaluation mark. A tick that finds the
lease held skips the evaluation (its dispatch still runs: claims are safe to share). A holder
that dies keeps the lease until it runs out, then the next tick evaluates.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, update
from sqlmodel import Session

from .models import CampaignState
from .sql import dialect_insert

EVALUATION_LEASE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Evaluation:
    """A campaign's state as a tick found it when it asked for the evaluation lease."""

    state: CampaignState
    token: str | None  # this tick's lease token; None when another tick holds the lease

    @property
    def held(self) -> bool:
        return self.token is not None

    def busy_note(self) -> str:
        until = self.state.evaluation_lease_until
        return ("another tick is evaluating this campaign"
                + (f" (its lease runs until {until:%Y-%m-%d %H:%M:%S} UTC)" if until else "")
                + "; evaluation skipped, due sends dispatched")


def campaign_state(session: Session, campaign_id: str) -> CampaignState | None:
    return session.get(CampaignState, campaign_id)


def record_seen(session: Session, campaign_ids: Sequence[str], now: dt.datetime) -> None:
    """Record each campaign not seen before as first seen at `now`, in one statement; the caller commits.

    A tick records its whole campaign set before it evaluates any of them (and the daemon each set
    it loads), so one that dies busy with one campaign still fixes the window of those it never
    reached: what falls due for them meanwhile is sent, or recorded as expired, later.
    """
    if campaign_ids:
        session.execute(dialect_insert(session.get_bind(), CampaignState)
                        .values([{"campaign_id": campaign_id, "first_seen_at": now} for campaign_id in campaign_ids])
                        .on_conflict_do_nothing(index_elements=["campaign_id"]))


def take_evaluation(session: Session, campaign_id: str, now: dt.datetime,
                    lease: dt.timedelta = EVALUATION_LEASE) -> Evaluation:
    """Record the campaign as seen (first time: now) and take its evaluation lease unless another holds it.

    Commits before returning, so the first sighting survives a tick that dies while planning.
    """
    token = uuid.uuid4().hex
    record_seen(session, [campaign_id], now)
    taken = session.execute(
        update(CampaignState)
        .where(CampaignState.campaign_id == campaign_id,
               or_(CampaignState.evaluation_lease_until.is_(None), CampaignState.evaluation_lease_until <= now))
        .values(evaluation_lease_token=token, evaluation_lease_until=now + lease)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    session.commit()
    state = session.get(CampaignState, campaign_id, populate_existing=True)
    assert state is not None
    session.expunge(state)  # a snapshot of this moment: later reads in the session must not change it
    return Evaluation(state=state, token=token if taken else None)


def finish_evaluation(session: Session, evaluation: Evaluation, now: dt.datetime, *, completed: bool) -> None:
    """Give the lease back; when the evaluation completed, mark the campaign evaluated at `now`.

    The mark only moves forward, and moves even if the lease ran out meanwhile: what was planned
    is in the ledger either way.
    """
    campaign_id = evaluation.state.campaign_id
    if completed:
        session.execute(update(CampaignState).where(
            CampaignState.campaign_id == campaign_id,
            or_(CampaignState.last_evaluated_at.is_(None), CampaignState.last_evaluated_at < now),
        ).values(last_evaluated_at=now).execution_options(synchronize_session=False))
    session.execute(update(CampaignState).where(
        and_(CampaignState.campaign_id == campaign_id, CampaignState.evaluation_lease_token == evaluation.token),
    ).values(evaluation_lease_token=None, evaluation_lease_until=None).execution_options(synchronize_session=False))
    session.commit()
