"""The rule for one occurrence: send now, hold it back until the next allowed moment, or skip it.

Pure: everything it needs is passed in (the customer's marketing mail around `now`, their last
engagement, their time zone), so each boundary is tested without a store.

Spacing is checked both ways round: an email planned for later (held back by a send window,
say) blocks mail that would land too close before it, just as mail already sent blocks mail
after it. So a decision never needs revisiting: whatever is planned keeps every cap and gap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..models import SkipReason
from .spec import Policy
from .window import next_opening


@dataclass(frozen=True)
class Mailed:
    """One marketing email to the customer: when it was (or will be) sent, and whether a different
    campaign of this same evaluation took that slot (then losing to it is a matter of priority)."""

    at: dt.datetime
    rival: bool = False


@dataclass(frozen=True)
class Verdict:
    """`at`: when to send (None: skip); `reason`: why it is held back or skipped (None: sent when due)."""

    at: dt.datetime | None
    reason: SkipReason | None = None


def _conflict(policy: Policy, at: dt.datetime, mailed: list[Mailed]) -> SkipReason | None:
    """Why other mail stands in the way of sending at `at`, if it does (one pass: it runs for every
    candidate instant of every occurrence)."""
    cap, gap = policy.frequency_cap, policy.smart_sending
    per = cap.per if cap else None
    in_cap = too_close = 0
    rival_in_cap = rival_too_close = False
    for m in mailed:
        apart = abs(m.at - at)
        if per is not None and apart < per:
            in_cap += 1
            rival_in_cap = rival_in_cap or m.rival
        if gap is not None and apart < gap:
            too_close += 1
            rival_too_close = rival_too_close or m.rival
    capped = cap is not None and in_cap >= cap.max
    if (capped and rival_in_cap) or rival_too_close:
        return SkipReason.PRIORITY
    if capped:
        return SkipReason.CAPPED
    if too_close:
        return SkipReason.SMART_SENDING
    return None


def _opening(policy: Policy, at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return next_opening(policy.send_window, at, zone) if policy.send_window else at


def next_allowed(policy: Policy, now: dt.datetime, zone: ZoneInfo, mailed: list[Mailed]) -> dt.datetime:
    """The earliest instant from `now` that the cap, smart sending and the send window all allow.

    Only an instant where a rule stops holding (now, the moment an email leaves the cap's
    window or the smart-sending gap) can be the first allowed one, moved to the window's next
    opening; so those few candidates are tried in order. Between a candidate and that opening
    rules only tighten, so a candidate that is itself blocked is passed over without computing
    the opening. The last candidate always passes.
    """
    spans = [span for span in (policy.frequency_cap and policy.frequency_cap.per, policy.smart_sending) if span]
    candidates = sorted({now, *(m.at + span for m in mailed for span in spans if m.at + span > now)})
    for candidate in candidates:
        if _conflict(policy, candidate, mailed) is not None:
            continue
        at = _opening(policy, candidate, zone)
        if at == candidate or _conflict(policy, at, mailed) is None:
            break
    return at


def decide(policy: Policy, *, now: dt.datetime, due_at: dt.datetime, expire_after: dt.timedelta, zone: ZoneInfo,
           mailed: list[Mailed], engaged_at: dt.datetime) -> Verdict:
    """What to do with a marketing occurrence due at `due_at`, evaluated at `now`."""
    if policy.sunset and engaged_at <= now - policy.sunset.after:
        return Verdict(None, SkipReason.SUNSET)
    opening = _opening(policy, now, zone)
    reason = _conflict(policy, now, mailed) or (SkipReason.QUIET_HOURS if opening > now else None)
    if reason is None:
        return Verdict(now)
    if policy.on_conflict == "skip":  # only the send window may hold it back; other mail in the way skips it
        conflict = _conflict(policy, opening, mailed)
        if conflict:
            return Verdict(None, conflict)
        at = opening
    else:
        at = next_allowed(policy, now, zone, mailed)
    return Verdict(at if at < due_at + expire_after else None, reason)
