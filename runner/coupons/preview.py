"""What `lifecycle preview` shows of a campaign's coupon pool, without handing out a code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from ..campaigns import Campaign
from ..engine import Occurrence
from ..models import SkipReason
from .pool import pool_counts


@dataclass
class PoolPreview:
    """A preview's view of a campaign's coupon pool, read without handing out a code: the occurrences
    due now get a placeholder naming the pool and how many codes it holds, as long as it holds
    any; those past that are shown held back for want of a code (deferred:no_coupon), as a tick
    would hold them."""

    pool: str
    left: int
    retry_at: dt.datetime
    placeholders: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Any, campaign: Campaign, retry_at: dt.datetime) -> PoolPreview | None:
        if campaign.coupon is None or campaign.coupon.pool is None:
            return None
        pool = campaign.coupon.pool
        return cls(pool, pool_counts(session, [pool], retry_at).get(pool, (0, 0, 0))[1], retry_at)

    def share(self, chunk: list[Occurrence]) -> list[Occurrence]:
        out = []
        for occ in chunk:
            if occ.skip_reason is None:
                if self.left > 0:
                    self.placeholders[occ.occurrence_key] = f"(from pool {self.pool}: {self.left} left)"
                    self.left -= 1
                else:
                    occ = replace(occ, skip_reason=SkipReason.NO_COUPON, deferred_until=self.retry_at)
            out.append(occ)
        return out
