"""The VIP spend threshold, materialised: one ranked scan of every buying customer a day, not one a tick.

The `vip` segment's threshold (the least spend among the top customers at LIFECYCLE_SEGMENT_VIP_PERCENTILE,
runner/segments/) takes a ranked scan of every buying customer's orders: about half a second at 100,000
customers, 20 s at a million on a shared machine (docs/performance.md). The milestone trigger's `segment: vip` compares
the orders of each window with it every tick, so it reads it from the segment_threshold table instead,
which a refresh appends a row to: the daemon's nightly job (LIFECYCLE_AFFINITY_SCHEDULE, and at start
when the table holds no row of the last day), `lifecycle refresh-affinity` from cron.

The rows are kept, and an order is compared with the threshold in effect when it was placed (the last
row computed by then), so the answer is the same live, at a past instant and simulated. An order placed
before the first refresh is compared with the first threshold found.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import Session

from ..models import SegmentThreshold
from ..sql import dialect_insert
from . import SegmentRules, buying_customers, percentile_floor

VIP = "vip"
REFRESH_EVERY = dt.timedelta(hours=24)


def rebuild_vip_threshold(conn: Connection, now: dt.datetime, rules: SegmentRules) -> int | None:
    """Find the VIP threshold as of `now` (one ranked scan) and record it; returns it in minor units, or
    None (and records nothing) when no customer had bought by then."""
    population = buying_customers(now)
    value = conn.execute(select(percentile_floor(population.c.revenue, population, rules.vip_percentile))).scalar()
    if value is None:
        return None
    row = dialect_insert(conn, SegmentThreshold).values(segment=VIP, percentile=rules.vip_percentile,
                                                        computed_at=now, value=int(value))
    conn.execute(row.on_conflict_do_update(index_elements=["segment", "percentile", "computed_at"],
                                           set_={"value": row.excluded.value}))
    return int(value)


def latest_vip_threshold(session: Session, rules: SegmentRules) -> tuple[dt.datetime, int] | None:
    """(computed_at, value) of the last VIP threshold recorded at the rules' percentile, or None."""
    row = session.execute(
        select(SegmentThreshold.computed_at, SegmentThreshold.value)
        .where(SegmentThreshold.segment == VIP, SegmentThreshold.percentile == rules.vip_percentile)
        .order_by(SegmentThreshold.computed_at.desc()).limit(1)).first()
    return None if row is None else (row[0], row[1])


def refresh_vip_threshold(session: Session, now: dt.datetime, rules: SegmentRules, *,
                          only_if_stale: bool = False) -> bool:
    """Record the VIP threshold as of `now` and commit, or, `only_if_stale`, only when the last one at the
    rules' percentile is older than REFRESH_EVERY (or there is none). Returns whether it recorded one."""
    latest = latest_vip_threshold(session, rules)
    if only_if_stale and latest is not None and now - latest[0] < REFRESH_EVERY:
        return False
    recorded = rebuild_vip_threshold(session.connection(), now, rules) is not None
    session.commit()
    return recorded


def vip_threshold_at(at: Any, percentile: float) -> Any:
    """The VIP threshold in effect at `at` (an SQL expression, an order's instant): the last one recorded by
    then at `percentile`, else the first recorded; NULL while none is, which no comparison passes. Two
    probes of the table's primary key."""
    t = SegmentThreshold
    recorded = select(t.value).where(t.segment == VIP, t.percentile == percentile)
    in_effect = recorded.where(t.computed_at <= at).order_by(t.computed_at.desc()).limit(1).scalar_subquery()
    first = recorded.order_by(t.computed_at).limit(1).scalar_subquery()
    return func.coalesce(in_effect, first)
