"""The coupon settings: the secret of generated codes, and when a pool running low is warned about."""

from __future__ import annotations

from ..settings import Setting, parse_non_negative_int, parse_positive_int

COUPON_SECRET = Setting("LIFECYCLE_COUPON_SECRET", "",
                        "key of the codes campaigns generate (`coupon: {generate: ...}`), a long random text; "
                        "changing it changes the code of every send not yet sent", secret=True)
WARN_DAYS = Setting("LIFECYCLE_COUPON_WARN_DAYS", "7",
                    "warn when a coupon pool holds fewer codes than it handed out in this many days",
                    parse_positive_int)
WARN_BELOW = Setting("LIFECYCLE_COUPON_WARN_BELOW", "50",
                     "warn too when a coupon pool holds fewer codes than this", parse_non_negative_int)

COUPON_SETTINGS = (COUPON_SECRET, WARN_DAYS, WARN_BELOW)
