"""Net Promoter Score per month or week: promoters, passives, detractors, the score and its interval.

Each email answered counts once, with its latest score, in the period in which it was first
answered. One grouped query on the answered_at index returns at most eleven rows per period
(one per score), whatever the number of answers.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from ..models import NpsResponse
from ..sql import month_start, week_start
from .stats import Z95

Period = Literal["month", "week"]
PROMOTER_FROM = 9  # 9 and 10
DETRACTOR_UP_TO = 6  # 0 to 6; 7 and 8 are passives


@dataclass(frozen=True)
class NpsFigures:
    """One period's answers (or the whole range's, with `period` None)."""

    period: str | None  # the period's first day, YYYY-MM-DD
    promoters: int
    passives: int
    detractors: int

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters - % detractors, from -100 to 100; None without answers."""
        if not self.responses:
            return None
        return 100 * (self.promoters - self.detractors) / self.responses

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval of the NPS by the normal approximation: with p and d the shares of promoters
        and detractors, its standard error is sqrt((p + d - (p - d)^2) / n). None below two answers."""
        n = self.responses
        if n < 2:
            return None
        p, d = self.promoters / n, self.detractors / n
        margin = 100 * Z95 * math.sqrt(max(0.0, p + d - (p - d) ** 2) / n)
        score = 100 * (p - d)
        return max(-100.0, score - margin), min(100.0, score + margin)

    def as_dict(self) -> dict[str, Any]:
        return {"period": self.period, "responses": self.responses, "promoters": self.promoters,
                "passives": self.passives, "detractors": self.detractors, "nps": self.nps,
                "nps_95": self.interval}


@dataclass(frozen=True)
class NpsReport:
    since: dt.datetime
    until: dt.datetime
    period: Period
    periods: list[NpsFigures]  # oldest first; periods without answers are left out
    total: NpsFigures


def nps_report(conn: Connection, since: dt.datetime, until: dt.datetime, period: Period) -> NpsReport:
    """The answers first given in [since, until) (naive UTC), per calendar month or ISO week (UTC)."""
    starts = month_start(NpsResponse.answered_at) if period == "month" else week_start(NpsResponse.answered_at)
    counts: dict[str, dict[str, int]] = {}
    for start, score, number in conn.execute(
            select(starts, NpsResponse.score, func.count())
            .where(NpsResponse.answered_at >= since, NpsResponse.answered_at < until)
            .group_by(starts, NpsResponse.score)):
        kind = ("promoters" if score >= PROMOTER_FROM else "detractors" if score <= DETRACTOR_UP_TO
                else "passives")
        found = counts.setdefault(start, {"promoters": 0, "passives": 0, "detractors": 0})
        found[kind] += number
    periods = [NpsFigures(start, **found) for start, found in sorted(counts.items())]
    total = NpsFigures(None, *(sum(getattr(f, kind) for f in periods)
                               for kind in ("promoters", "passives", "detractors")))
    return NpsReport(since, until, period, periods, total)
