"""What the front door's ticks and previews return: a tick's counts per campaign, a preview's rendered items."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .engine import Occurrence
from .rendering.templates import RenderedEmail


@dataclass
class TickReport:
    """Counts per campaign: due (newly planned), sent, failed, retrying, deferred:<reason>, skipped:<reason>;
    the campaigns whose evaluation this tick skipped because another tick was evaluating them, with why;
    and warnings to act on (a coupon pool running low)."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    not_evaluated: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for campaign_id, c in self.counts.items():
            by_reason = {kind: {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith(f"{kind}:")}
                         for kind in ("deferred", "skipped")}
            out.append({"campaign": campaign_id, "evaluated": campaign_id not in self.not_evaluated,
                        "due": c["due"], "sent": c["sent"], "failed": c["failed"], "retrying": c["retrying"],
                        **by_reason, "note": self.not_evaluated.get(campaign_id)})
        return out


@dataclass(frozen=True)
class PreviewItem:
    """One occurrence a tick would record, and the email it would send."""

    occurrence: Occurrence
    email: RenderedEmail | None  # None when the occurrence would be skipped
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the extra headers the email would carry
