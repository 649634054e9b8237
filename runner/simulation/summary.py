"""Counting a simulation: outcomes per campaign and day (UTC), totals, and buckets for a table."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..durations import format_duration
from ..models import SkipReason
from ..store import iso_utc
from .grid import TickGrid
from .replay import SimulatedOccurrence

# The sending policies (caps, smart sending, quiet hours, sunset) are not replayed: they depend on
# the order the sends went out in, tick after tick. A simulation counts what the campaigns find.
OUTCOMES = ("sent", *(reason.value for reason in (SkipReason.NO_CONSENT, SkipReason.SUPPRESSED, SkipReason.EXPIRED)))
CSV_COLUMNS = ("day", "campaign", *OUTCOMES)


@dataclass
class SimulationSummary:
    """How many emails each campaign would have sent per day, and how many it would have skipped by reason."""

    grid: TickGrid
    campaign_ids: list[str]
    daily: dict[tuple[str, dt.date], Counter[str]] = field(default_factory=dict)
    assumed_consent: bool = False  # customers without marketing consent were counted as if they had it

    @classmethod
    def collect(cls, grid: TickGrid, campaign_ids: list[str], occurrences: Iterable[SimulatedOccurrence],
                progress: Callable[[int], None] = lambda n: None, *, assumed_consent: bool = False,
                ) -> SimulationSummary:
        summary = cls(grid, list(campaign_ids), assumed_consent=assumed_consent)
        for n, occ in enumerate(occurrences, 1):
            summary.daily.setdefault((occ.campaign_id, occ.tick_at.date()), Counter())[occ.outcome] += 1
            if n % 1000 == 0:
                progress(n)
        return summary

    def days(self) -> list[dt.date]:
        first, last = self.grid.start.date(), self.grid.last.date()
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def day_counts(self, campaign_id: str, day: dt.date) -> Counter[str]:
        return self.daily.get((campaign_id, day), Counter())

    def totals(self, campaign_id: str) -> Counter[str]:
        total: Counter[str] = Counter()
        for (campaign, _), counts in self.daily.items():
            if campaign == campaign_id:
                total.update(counts)
        return total

    def peak_day(self, campaign_id: str) -> tuple[dt.date, int] | None:
        """The day with the most emails sent, or None when none were."""
        sent = [(counts["sent"], day) for (campaign, day), counts in self.daily.items()
                if campaign == campaign_id and counts["sent"]]
        if not sent:
            return None
        count, day = max(sent, key=lambda pair: (pair[0], -pair[1].toordinal()))
        return day, count

    def bucket_unit(self) -> str:
        """The unit a readable table groups days by: day up to a month, week up to half a year, month beyond."""
        days = len(self.days())
        return "day" if days <= 31 else "week" if days <= 183 else "month"

    def buckets(self) -> list[tuple[str, dict[str, int]]]:
        """Emails sent per bucket (bucket_unit) and campaign, in order, every bucket of the period listed."""
        unit = self.bucket_unit()
        rows: dict[str, dict[str, int]] = {}
        for day in self.days():
            label = _bucket_label(day, unit)
            row = rows.setdefault(label, dict.fromkeys(self.campaign_ids, 0))
            for campaign_id in self.campaign_ids:
                row[campaign_id] += self.day_counts(campaign_id, day)["sent"]
        return list(rows.items())

    def daily_rows(self) -> list[dict[str, Any]]:
        """One row per day and campaign, days without anything included (zeros)."""
        return [{"day": day.isoformat(), "campaign": campaign_id,
                 **{o: self.day_counts(campaign_id, day)[o] for o in OUTCOMES}}
                for day in self.days() for campaign_id in self.campaign_ids]

    def write_csv(self, stream: TextIO) -> None:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.daily_rows())

    def as_dict(self) -> dict[str, Any]:
        campaigns = []
        for campaign_id in self.campaign_ids:
            totals, peak = self.totals(campaign_id), self.peak_day(campaign_id)
            campaigns.append({"campaign": campaign_id, "sent": totals["sent"],
                              "skipped": {o: totals[o] for o in OUTCOMES[1:]},
                              "sent_per_day": totals["sent"] / len(self.days()),
                              "peak_day": peak[0].isoformat() if peak else None, "peak_sent": peak[1] if peak else 0})
        return {"from": iso_utc(self.grid.start), "to": iso_utc(self.grid.last),
                "step": format_duration(self.grid.step), "ticks": self.grid.count,
                "assumed_consent": self.assumed_consent, "campaigns": campaigns,
                "days": self.daily_rows()}


def _bucket_label(day: dt.date, unit: str) -> str:
    if unit == "day":
        return day.isoformat()
    if unit == "week":  # weeks start on Monday; the label is that Monday
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return f"{day:%Y-%m}"
