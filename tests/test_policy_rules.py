"""The policy rules at their boundaries, without a store: caps, smart sending, windows, priority, sunset."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from runner.models import SkipReason
from runner.policies.decide import Mailed, Verdict, decide
from runner.policies.spec import FrequencyCap, Policy, PolicySpec, SendWindow, Sunset
from runner.policies.window import next_opening

UTC = ZoneInfo("UTC")
T0 = dt.datetime(2026, 11, 2, 10, 0)  # naive UTC, as the engine passes instants
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
CAP_2_PER_WEEK = Policy(frequency_cap=FrequencyCap(max=2, per="7d"))
SMART_16H = Policy(smart_sending=dt.timedelta(hours=16))
DAYTIME = SendWindow(start="08:00", end="21:00")


def verdict(policy: Policy, now: dt.datetime, mailed: list[Mailed] = (), *, zone: ZoneInfo = UTC,
            due_at: dt.datetime | None = None, expire_after: dt.timedelta = 30 * DAY,
            engaged_at: dt.datetime = T0) -> Verdict:
    return decide(policy, now=now, due_at=due_at or now, expire_after=expire_after, zone=zone, mailed=list(mailed),
                  engaged_at=engaged_at)


# ---------------------------------------------------------------- frequency cap

def test_cap_window_edge_two_per_seven_days():
    mailed = [Mailed(T0), Mailed(T0 + DAY)]
    week_later = T0 + 7 * DAY
    assert verdict(CAP_2_PER_WEEK, week_later - SECOND, mailed) == Verdict(week_later, SkipReason.CAPPED)
    assert verdict(CAP_2_PER_WEEK, week_later, mailed) == Verdict(week_later)


def test_cap_defers_to_the_instant_the_oldest_email_leaves_the_window():
    mailed = [Mailed(T0), Mailed(T0 + DAY)]
    assert verdict(CAP_2_PER_WEEK, T0 + 3 * DAY, mailed) == Verdict(T0 + 7 * DAY, SkipReason.CAPPED)


def test_cap_counts_mail_planned_for_later_too():
    # one sent yesterday, one planned (held back) for tomorrow: a third today would break the cap
    mailed = [Mailed(T0 - DAY), Mailed(T0 + DAY)]
    result = verdict(CAP_2_PER_WEEK, T0, mailed)
    assert result.reason is SkipReason.CAPPED
    assert result.at == T0 + 6 * DAY  # when yesterday's leaves every 7-day window that holds tomorrow's


def test_a_deferral_is_never_to_an_instant_already_past():
    # an email long gone would leave the cap's window a day ago, when tomorrow's next week was out of reach
    mailed = [Mailed(T0 - 8 * DAY), Mailed(T0 - DAY), Mailed(T0 + 6 * DAY + 12 * dt.timedelta(hours=1))]
    assert verdict(CAP_2_PER_WEEK, T0, mailed) == Verdict(T0 + 6 * DAY, SkipReason.CAPPED)


def test_cap_below_the_limit_sends_now():
    assert verdict(CAP_2_PER_WEEK, T0, [Mailed(T0 - DAY)]) == Verdict(T0)


# ---------------------------------------------------------------- smart sending

def test_smart_sending_edge_sixteen_hours():
    mailed = [Mailed(T0)]
    assert verdict(SMART_16H, T0 + dt.timedelta(hours=16) - SECOND, mailed).reason is SkipReason.SMART_SENDING
    assert verdict(SMART_16H, T0 + dt.timedelta(hours=16), mailed) == Verdict(T0 + dt.timedelta(hours=16))


def test_smart_sending_keeps_clear_of_mail_planned_later():
    result = verdict(SMART_16H, T0, [Mailed(T0 + dt.timedelta(hours=2))])
    assert result == Verdict(T0 + dt.timedelta(hours=18), SkipReason.SMART_SENDING)


def test_a_rival_of_the_same_evaluation_makes_it_a_matter_of_priority():
    assert verdict(SMART_16H, T0, [Mailed(T0, rival=True)]).reason is SkipReason.PRIORITY


def test_skip_instead_of_defer_when_the_campaign_says_so():
    policy = Policy(smart_sending=dt.timedelta(hours=16), on_conflict="skip")
    assert verdict(policy, T0, [Mailed(T0 - dt.timedelta(hours=1))]) == Verdict(None, SkipReason.SMART_SENDING)


def test_a_deferral_past_expire_after_is_a_skip_with_its_reason():
    mailed = [Mailed(T0 - dt.timedelta(hours=1))]
    assert verdict(SMART_16H, T0, mailed, expire_after=dt.timedelta(hours=15)) == \
        Verdict(None, SkipReason.SMART_SENDING)
    # due an hour ago with 16h to live: free again at T0+15h, one hour before it expires
    assert verdict(SMART_16H, T0, mailed, due_at=T0 - dt.timedelta(hours=1), expire_after=dt.timedelta(hours=17)) \
        == Verdict(T0 + dt.timedelta(hours=15), SkipReason.SMART_SENDING)


# ---------------------------------------------------------------- send window

@pytest.mark.parametrize(("zone", "now", "opens"), [
    # Auckland in November is NZDT, UTC+13: 09:30 UTC is 22:30 there; 08:00 next day is 19:00 UTC
    ("Pacific/Auckland", dt.datetime(2026, 11, 2, 9, 30), dt.datetime(2026, 11, 2, 19, 0)),
    # Los Angeles in November (after DST ends on the 1st) is PST, UTC-8: 13:00 UTC is 05:00 there
    ("America/Los_Angeles", dt.datetime(2026, 11, 2, 13, 0), dt.datetime(2026, 11, 2, 16, 0)),
    # ... and in July PDT, UTC-7: 14:00 UTC is 07:00, the window opens at 15:00 UTC
    ("America/Los_Angeles", dt.datetime(2026, 7, 1, 14, 0), dt.datetime(2026, 7, 1, 15, 0)),
])
def test_send_window_on_the_customers_clock(zone: str, now: dt.datetime, opens: dt.datetime):
    policy = Policy(send_window=DAYTIME)
    assert verdict(policy, now, zone=ZoneInfo(zone)) == Verdict(opens, SkipReason.QUIET_HOURS)
    assert verdict(policy, opens, zone=ZoneInfo(zone)) == Verdict(opens)
    assert verdict(policy, opens - SECOND, zone=ZoneInfo(zone)).reason is SkipReason.QUIET_HOURS


def test_send_window_closes_at_its_end():
    la = ZoneInfo("America/Los_Angeles")
    closing = dt.datetime(2026, 11, 3, 5, 0)  # 21:00 PST on 2 November
    assert verdict(Policy(send_window=DAYTIME), closing - SECOND, zone=la) == Verdict(closing - SECOND)
    assert verdict(Policy(send_window=DAYTIME), closing, zone=la) == \
        Verdict(dt.datetime(2026, 11, 3, 16, 0), SkipReason.QUIET_HOURS)


def test_send_window_past_midnight():
    late = SendWindow(start="18:00", end="02:00")
    assert next_opening(late, dt.datetime(2026, 11, 2, 1, 59), UTC) == dt.datetime(2026, 11, 2, 1, 59)
    assert next_opening(late, dt.datetime(2026, 11, 2, 2, 0), UTC) == dt.datetime(2026, 11, 2, 18, 0)


def test_send_window_opening_in_a_daylight_saving_gap():
    # 8 March 2026, Los Angeles: clocks jump from 02:00 to 03:00 PDT; a 02:30 opening is 10:30 UTC
    night = SendWindow(start="02:30", end="06:00")
    assert next_opening(night, dt.datetime(2026, 3, 8, 9, 0), ZoneInfo("America/Los_Angeles")) == \
        dt.datetime(2026, 3, 8, 10, 30)


def test_quiet_hours_then_a_cap_waits_for_both():
    mailed = [Mailed(T0 - 6 * DAY), Mailed(T0 - DAY)]
    night = dt.datetime(2026, 11, 2, 22, 0)  # UTC zone: closed until 08:00
    result = verdict(Policy(frequency_cap=FrequencyCap(max=2, per="7d"), send_window=DAYTIME), night, mailed)
    # the cap is what holds it (reported first); the first email leaves it at T0+1d 10:00, inside the window
    assert result == Verdict(T0 + DAY, SkipReason.CAPPED)
    # with one email less, only the night holds it, until 08:00
    result = verdict(Policy(frequency_cap=FrequencyCap(max=2, per="7d"), send_window=DAYTIME), night, mailed[1:])
    assert result == Verdict(dt.datetime(2026, 11, 3, 8, 0), SkipReason.QUIET_HOURS)


# ---------------------------------------------------------------- sunset

def test_sunset_after_the_declared_period_without_engagement():
    policy = Policy(sunset=Sunset(after="180d"))
    assert verdict(policy, T0, engaged_at=T0 - 180 * DAY) == Verdict(None, SkipReason.SUNSET)
    assert verdict(policy, T0, engaged_at=T0 - 180 * DAY + SECOND) == Verdict(T0)


# ---------------------------------------------------------------- the spec

def test_a_campaign_key_replaces_the_shops_and_off_turns_a_rule_off():
    shop = PolicySpec.model_validate({"smart_sending": "16h", "frequency_cap": {"max": 3, "per": "7d"},
                                      "send_window": {"start": "08:00", "end": "21:00"}})
    campaign = PolicySpec.model_validate({"smart_sending": "off", "priority": 5, "send_window": False})
    policy = Policy.resolve(shop, campaign, frozenset({"receipts"}))
    assert policy.smart_sending is None and policy.send_window is None and policy.priority == 5
    assert policy.frequency_cap == FrequencyCap(max=3, per="7d") and policy.uncounted == {"receipts"}
    assert Policy.resolve(shop, None, frozenset()).smart_sending == dt.timedelta(hours=16)


@pytest.mark.parametrize("raw", [{"send_window": {"start": "25:00", "end": "08:00"}},
                                 {"send_window": {"start": "08:00", "end": "8"}},
                                 {"frequency_cap": {"max": 0, "per": "7d"}},
                                 {"frequency_cap": {"max": 2, "per": "0d"}},
                                 {"on_conflict": "later"}])
def test_invalid_policies_are_refused(raw: dict):
    with pytest.raises(ValueError):
        PolicySpec.model_validate(raw)
