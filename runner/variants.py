"""A/B variants: which version of a campaign's message a customer gets, the same on every evaluation.

SHA-256 of (campaign id, customer id) gives each customer a point in [0, 1) per campaign; the
variant whose slice of the cumulative weights holds that point is theirs. Unlike Python's
`hash()`, the digest is the same in every process, so re-evaluating a campaign never moves a
customer to another variant. The engine records the choice in the ledger when it plans a send, so
changing the weights later moves only customers assigned after the change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def point(campaign_id: str, customer_id: int) -> float:
    """Where a customer falls in [0, 1) for a campaign: uniform across customers, fixed for each."""
    digest = hashlib.sha256(f"{campaign_id}\0{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def choose(weights: Sequence[tuple[str, float]], campaign_id: str, customer_id: int) -> str:
    """The name of the variant a customer gets, given (name, weight) pairs in the campaign's order."""
    target = point(campaign_id, customer_id) * sum(weight for _, weight in weights)
    reached = 0.0
    for name, weight in weights:
        reached += weight
        if target < reached:
            return name
    return weights[-1][0]  # a point at the very top, after float rounding of the sum
