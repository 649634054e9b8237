"""The settings that declare the segments' thresholds, read into SegmentRules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from ..durations import parse_duration
from ..money import to_minor
from ..segments import SegmentRules
from ..settings import Setting, Settings


def parse_percentile(raw: str) -> float:
    value = float(raw)
    if not 0 <= value < 100:
        raise ValueError("expected a percentile from 0 up to (not including) 100, such as 90")
    return value


def parse_share(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError("expected a share above 0 and at most 1, such as 0.5")
    return value


def parse_amount(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError("expected an amount in the shop currency, such as 500 or 499.90") from None
    if not value.is_finite() or value < 0:
        raise ValueError("expected an amount of at least 0")
    return value


def parse_days(raw: str) -> dt.timedelta:
    value = parse_duration(raw)
    if value.total_seconds() <= 0:
        raise ValueError("expected a duration such as 180d")
    return value


VIP_PERCENTILE = Setting("LIFECYCLE_SEGMENT_VIP_PERCENTILE", "90",
                         "VIP segment: customers whose total spend is at or above this percentile", parse_percentile)
BIG_SPENDER = Setting("LIFECYCLE_SEGMENT_BIG_SPENDER", "500",
                      "big_spenders segment: total spend at least this amount, in the shop currency", parse_amount)
HIGH_AOV_PERCENTILE = Setting("LIFECYCLE_SEGMENT_HIGH_AOV_PERCENTILE", "75",
                              "high_aov segment: average order value at or above this percentile", parse_percentile)
DISCOUNT_SHARE = Setting("LIFECYCLE_SEGMENT_DISCOUNT_SHARE", "0.5",
                         "discount_shoppers segment: at least this share of orders used a discount code", parse_share)
LAPSED_AFTER = Setting("LIFECYCLE_SEGMENT_LAPSED_AFTER", "180d",
                       "lapsed segment: no order for this long", parse_days)
REPORT_PERIOD = Setting("LIFECYCLE_REPORT_PERIOD", "365d",
                        "the period retention, purchase frequency and lifetime value are measured over", parse_days)

ATTRIBUTION_WINDOW = Setting("LIFECYCLE_ATTRIBUTION_WINDOW", "5d",
                              "an order within this time after an email is attributed to it (last touch)", parse_days)

SEGMENT_SETTINGS: tuple[Setting, ...] = (VIP_PERCENTILE, BIG_SPENDER, HIGH_AOV_PERCENTILE, DISCOUNT_SHARE,
                                         LAPSED_AFTER, REPORT_PERIOD, ATTRIBUTION_WINDOW)


def segment_rules(settings: Settings, currency: str) -> SegmentRules:
    return SegmentRules(
        vip_percentile=settings[VIP_PERCENTILE],
        big_spender_cents=to_minor(settings[BIG_SPENDER], currency),
        high_aov_percentile=settings[HIGH_AOV_PERCENTILE],
        discount_share=settings[DISCOUNT_SHARE],
        lapsed_after=settings[LAPSED_AFTER],
    )
