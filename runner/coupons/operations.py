"""The coupon half of the library's front door (`runner.app.App`): pool status and warnings, imports, exports.

`App` inherits `CouponOperations`, so the CLI and the tests call these methods on the one `App`; they
need only its store and settings, which is why they live here, beside the coupon modules they use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from .. import settings as s
from ..campaign_state import campaign_state
from ..campaigns import Campaign
from ..engine import store_time_zones, window_for
from ..errors import Problem
from ..settings import Settings
from ..store import Store, utc_naive
from . import export as coupon_export
from . import settings as cs
from .generated import missing_secret
from .pool import PoolImport, PoolStatus, import_codes, pool_status, pool_warnings, pools_in_use


class CouponOperations:
    """Coupon methods over a store and its settings (the `App` that inherits them provides both)."""

    settings: Settings
    store: Store

    def _coupon_problems(self, campaigns: list[Campaign]) -> list[Problem]:
        """Campaigns that generate codes while no secret is set to generate them with."""
        return [] if self.settings[cs.COUPON_SECRET] else missing_secret(coupon_export.generating(campaigns))

    def coupon_pools(self, now: dt.datetime, campaigns: list[Campaign]) -> list[PoolStatus]:
        """Every coupon pool the store holds or one of `campaigns` uses, with how full it is."""
        with self.store.reading() as session:
            return pool_status(session, utc_naive(now), pools_in_use(campaigns), warn_days=self.settings[cs.WARN_DAYS],
                               warn_below=self.settings[cs.WARN_BELOW])

    def coupon_warnings(self, now: dt.datetime, campaigns: list[Campaign]) -> list[str]:
        """A line for each pool that `campaigns` use and that runs low or dry; reads nothing when none uses one."""
        with self.store.reading() as session:
            return pool_warnings(session, utc_naive(now), pools_in_use(campaigns),
                                 warn_days=self.settings[cs.WARN_DAYS], warn_below=self.settings[cs.WARN_BELOW])

    def import_coupons(self, pool: str, path: Path, now: dt.datetime) -> PoolImport:
        """Add a file's codes to a pool (all or nothing; what is there already is ignored)."""
        self.store.check()
        with self.store.session() as session:
            return import_codes(session, pool, path, utc_naive(now))

    def export_coupons(self, now: dt.datetime, campaigns: list[Campaign], path: Path,
                       since: dt.datetime | None = None, due_within: dt.timedelta | None = None) -> int:
        """Write the generated codes of `campaigns`' sends (planned at or after `since`), and with
        `due_within` those of occurrences a tick would plan by then, as the discount import CSV."""
        now = utc_naive(now)
        self.store.check()
        secret = self.settings[cs.COUPON_SECRET].encode()
        with self.store.reading() as session:
            zones = store_time_zones(session)

            def rows() -> Iterator[tuple[str, str]]:
                for campaign in coupon_export.generating(campaigns):
                    codes = coupon_export.ledger_codes(session, campaign, secret, utc_naive(since) if since else None)
                    if due_within is not None:
                        window = window_for(campaign, now + due_within, campaign_state(session, campaign.id),
                                            self.settings[s.DEFAULT_TIMEZONE], zones, self.settings[s.SHOP_CURRENCY])
                        codes = chain(codes, coupon_export.due_codes(session, campaign, secret, window))
                    yield from ((coupon_export.title(campaign), code) for code in codes)

            return coupon_export.write_codes(path, rows())
