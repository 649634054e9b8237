"""Hand-written floors: the least plain-sqlite3 SQL that finds the same due set as a campaign's evaluation.

`floor_due(conn, campaign, window)` returns the set of (occurrence key, customer id, due instant as
`str(datetime)` writes it) that `runner.engine.find_occurrences` finds for the campaign in the window
(a live window: the store holds nothing after window.now): the trigger's occurrences, for customers in
the audience, that the ledger does not hold yet. Like the runner, each floor also reads what planning
needs of every row (the address, its consent, its suppression): suppressed customers and those without
consent are found too, the runner records them as skipped. bench/evaluate.py checks both sets equal
before it compares their times. A trigger type (or an audience condition) without a floor raises KeyError.

Each floor is one statement: a `due(key, customer_id, due_at)` CTE for the trigger, searched on the
same indexes as the runner's, with its bounds computed in Python as text the way the store keeps
instants, under one common join of customer, suppression and ledger (`_finish`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from runner.campaigns import Campaign
from runner.money import to_minor
from runner.timezones import zone_or_default
from runner.triggers.base import Window
from runner.triggers.replenishment import ReplenishmentTrigger, like_pattern

Found = set[tuple[str, int, str]]
Params = dict[str, Any]

LOOKBACK = dt.timedelta(days=40)  # birthdays and anniversaries: how far back a live evaluation reaches
YEARS = 50  # anniversaries looked for


def stamp(moment: dt.datetime) -> str:
    """A naive-UTC instant as the store writes it (text with six fractional digits)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def iso(stored: str) -> str:
    """A stored instant as `str(datetime)` writes it: no fractional part when it is zero."""
    return stored[:-7] if stored.endswith(".000000") else stored


def _seconds(delta: dt.timedelta) -> int:
    return int(delta.total_seconds())


_AUDIENCE_COLUMNS = {"order_count": "c.order_count", "total_spent": "c.total_spent_cents",
                     "accepts_marketing": "c.accepts_marketing"}
_AUDIENCE_OPS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _audience(campaign: Campaign, window: Window, params: Params) -> str:
    """The campaign's audience over customer `c` (the comparisons of plain columns the shipped ones use)."""
    clauses = ["1"]
    for number, condition in enumerate(campaign.spec.audience):
        op, value = condition.operator
        column, sql_op = _AUDIENCE_COLUMNS[condition.field], _AUDIENCE_OPS[op]
        if condition.field == "total_spent":
            value = to_minor(str(value), window.currency)
        params[f"aud_{number}"] = value
        clauses.append(f"{column} {sql_op} :aud_{number}")
    return " AND ".join(clauses)


def _finish(conn: sqlite3.Connection, campaign: Campaign, window: Window, due: str, params: Params) -> Found:
    """The occurrences of the `due` CTE for customers in the audience, not in the ledger yet, with what
    planning reads of each (address, consent, suppression)."""
    rows = conn.execute(f"""
        WITH due(key, customer_id, due_at) AS ({due})
        SELECT due.key, due.customer_id, due.due_at, c.email, c.accepts_marketing, s.reason
        FROM due JOIN customer c ON c.id = due.customer_id
        LEFT JOIN suppression s ON s.email = c.email
        LEFT JOIN send ON send.campaign_id = :campaign AND send.occurrence_key = due.key
        WHERE send.id IS NULL AND {_audience(campaign, window, params)}
    """, {"campaign": campaign.id, "now": stamp(window.now), **params}).fetchall()
    return {(key, customer, iso(due_at)) for key, customer, due_at, *_ in rows}


def _delayed_bounds(window: Window, delay: dt.timedelta) -> Params:
    """The window on the stored instant that is `delay` before the due one."""
    return {"low": stamp(window.start - delay), "high": stamp(window.now - delay)}


def order_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    p = campaign.trigger.params
    column = "placed_at" if p.event == "placed" else "delivered_at"
    due = (f"SELECT 'order:' || o.id, o.customer_id, datetime(o.{column}, '{_seconds(p.delay)} seconds') "
           f"FROM orders o WHERE o.{column} > :low AND o.{column} <= :high AND o.cancelled_at IS NULL")
    return _finish(conn, campaign, window, due, _delayed_bounds(window, p.delay))


def lapsed_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    after = campaign.trigger.params.after
    due = ("SELECT 'lapse:' || c.id || ':' || strftime('%Y%m%d%H%M%S', c.last_order_at), c.id, "
           f"datetime(c.last_order_at, '{_seconds(after)} seconds') "
           "FROM customer c WHERE c.last_order_at > :low AND c.last_order_at <= :high")
    return _finish(conn, campaign, window, due, _delayed_bounds(window, after))


def abandoned_checkout_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    delay = campaign.trigger.params.delay
    due = ("SELECT 'checkout:' || k.id, k.customer_id, "
           f"datetime(k.abandoned_at, '{_seconds(delay)} seconds') FROM checkout k "
           "WHERE k.abandoned_at > :low AND k.abandoned_at <= :high "
           "AND (k.completed_at IS NULL OR k.completed_at > :now) "
           "AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = k.customer_id "
           "AND o.placed_at >= k.created_at AND o.placed_at <= :now)")
    return _finish(conn, campaign, window, due, _delayed_bounds(window, delay))


def predicted_reorder_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    p = campaign.trigger.params
    due = ("SELECT 'reorder:' || f.customer_id || ':' || strftime('%Y%m%d%H%M%S', o.placed_at), f.customer_id, "
           f"datetime(f.expected_at, '-{_seconds(p.before)} seconds') "
           "FROM reorder_forecast f JOIN orders o ON o.id = f.order_id "
           f"WHERE f.expected_at > :low AND f.expected_at <= :high AND f.orders >= {p.orders} "
           f"AND f.interval_seconds >= {_seconds(p.min_interval)} AND o.cancelled_at IS NULL "
           "AND NOT EXISTS (SELECT 1 FROM orders n WHERE n.customer_id = o.customer_id "
           "AND n.placed_at >= o.placed_at AND n.placed_at <= :now AND n.id != o.id "
           "AND (n.placed_at > o.placed_at OR n.id > o.id) AND (n.cancelled_at IS NULL OR n.cancelled_at > :now))")
    return _finish(conn, campaign, window, due, {"low": stamp(window.start + p.before),
                                                 "high": stamp(window.now + p.before)})


def milestone_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """Each order placed in the window with what its customer had before it (one join on the
    (customer_id, placed_at) index, grouped), then one CASE naming the threshold it crosses: entering
    the VIP segment first, then the order count, then the highest amount."""
    p = campaign.trigger.params
    currency = window.currency
    vip = p.segment == "vip"
    # entering the VIP segment first: every currency's spend against the threshold in effect at the order
    arms = ["WHEN all_spent < vip AND all_spent + total_cents >= vip THEN 'segment:vip'"] if vip else []
    arms += [f"WHEN n = {count - 1} THEN 'orders:{count}'" for count in sorted(set(p.orders))]
    arms += [f"WHEN currency = :currency AND spent < {cents} AND spent + total_cents >= {cents} "
             f"THEN 'spent:{currency}:{cents}'"
             for cents in sorted({to_minor(str(amount), currency) for amount in p.spent}, reverse=True)]
    due = f"""
        SELECT 'milestone:' || customer_id || ':' || crossed, customer_id, due_at FROM (
            SELECT customer_id, due_at, CASE {' '.join(arms)} END AS crossed FROM (
                SELECT o.customer_id, datetime(o.placed_at, '{_seconds(p.delay)} seconds') AS due_at,
                       o.currency, o.total_cents, count(e.id) AS n,
                       coalesce(sum(CASE WHEN e.currency = :currency THEN e.total_cents END), 0) AS spent
                       {_VIP_COLUMNS if vip else ""}
                FROM orders o LEFT JOIN orders e ON e.customer_id = o.customer_id
                     AND e.placed_at <= o.placed_at AND (e.placed_at < o.placed_at OR e.id < o.id)
                     AND (e.cancelled_at IS NULL OR e.cancelled_at > o.placed_at)
                WHERE o.placed_at > :low AND o.placed_at <= :high AND o.cancelled_at IS NULL
                GROUP BY o.id))
        WHERE crossed IS NOT NULL"""
    return _finish(conn, campaign, window, due, {**_delayed_bounds(window, p.delay), "currency": currency,
                                                 "percentile": window.segment_rules.vip_percentile})


_VIP_COLUMNS = """, coalesce(sum(e.total_cents), 0) AS all_spent, coalesce(
    (SELECT value FROM segment_threshold WHERE segment = 'vip' AND percentile = :percentile
     AND computed_at <= o.placed_at ORDER BY computed_at DESC LIMIT 1),
    (SELECT value FROM segment_threshold WHERE segment = 'vip' AND percentile = :percentile
     ORDER BY computed_at LIMIT 1)) AS vip"""


def _local_dues(window: Window, hour: int, minute: int) -> Iterator[tuple[dt.date, dt.datetime, str | None]]:
    """Each (local date, due instant in naive UTC, zone name) whose hour falls in the window, for the
    store's zones (None: the shop's, for customers without one)."""
    start = max(window.start, window.now - LOOKBACK)
    for name in window.time_zones:
        zone = zone_or_default(name, window.default_zone)
        day = start.replace(tzinfo=dt.UTC).astimezone(zone).date()
        last = window.now.replace(tzinfo=dt.UTC).astimezone(zone).date()
        while day <= last:
            due = dt.datetime.combine(day, dt.time(hour, minute), zone).astimezone(dt.UTC).replace(tzinfo=None)
            if start < due <= window.now:
                yield day, due, name
            day += dt.timedelta(days=1)


def _month_days(day: dt.date) -> list[str]:
    """29 February is celebrated on 28 February in other years."""
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        return ["02-28", "02-29"]
    return [day.strftime("%m-%d")]


def _zone(name: str | None) -> str:
    return "c.time_zone IS NULL" if name is None else f"c.time_zone = '{name}'"


def _no_due() -> str:
    return "SELECT NULL, NULL, NULL WHERE 0"


def birthday_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    p = campaign.trigger.params
    groups: dict[tuple[dt.date, dt.datetime], list[str | None]] = defaultdict(list)
    for day, due, name in _local_dues(window, p.hour, p.minute):
        groups[(day, due)].append(name)
    arms = [f"SELECT 'birthday:' || c.id || ':{day.year}', c.id, '{stamp(due)}' FROM customer c "
            f"WHERE c.birthday_md IN ({', '.join(repr(md) for md in _month_days(day))}) "
            f"AND ({' OR '.join(_zone(name) for name in names)})"
            for (day, due), names in groups.items()]
    return _finish(conn, campaign, window, " UNION ALL ".join(arms) or _no_due(), {})


def _utc(local: dt.datetime, zone: Any) -> str:
    return stamp(local.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None))


def anniversary_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """One arm per zone and local date: the UTC ranges of that date in each past year, in that zone, each
    (zone, range) one search of the (time_zone, first_order_at or created_at) index."""
    p = campaign.trigger.params
    column = "c.first_order_at" if p.since == "first_order" else "c.created_at"
    arms = []
    for day, due, name in _local_dues(window, p.hour, p.minute):
        zone = zone_or_default(name, window.default_zone)
        ranges = []
        for year in range(day.year - YEARS, day.year):
            for month_day in _month_days(day):
                month, mday = int(month_day[:2]), int(month_day[3:])
                if (month, mday) == (2, 29) and not calendar.isleap(year):
                    continue
                local = dt.datetime(year, month, mday)
                ranges.append(f"({_zone(name)} AND {column} >= '{_utc(local, zone)}' AND {column} < "
                              f"'{_utc(local + dt.timedelta(days=1), zone)}')")
        arms.append(f"SELECT 'anniversary:' || c.id || ':{day.year}', c.id, '{stamp(due)}' FROM customer c "
                    f"WHERE {' OR '.join(ranges)}")
    return _finish(conn, campaign, window, " UNION ALL ".join(arms) or _no_due(), {})


def replenishment_offsets(trigger: ReplenishmentTrigger) -> set[int]:
    """The distinct spans, in seconds, from an order line's placed_at to its due instant."""
    p = trigger.params
    return {_seconds(cycle * quantity - p.lead) for cycle in p.cycles.values()
            for quantity in range(1, p.max_quantity + 1)}


def replenishment_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """One branch per pattern and quantity: lines of that pattern (and no earlier one) and quantity,
    placed in the slice that falls due in the window, due at placed_at + a constant; then the order
    not cancelled and no later order of the same SKU by the customer."""
    trigger = campaign.trigger
    assert isinstance(trigger, ReplenishmentTrigger)
    if window.start >= window.now:
        return set()
    p = trigger.params
    branches, earlier, bounds = [], [], {}
    for glob, cycle in p.cycles.items():
        pattern = f"l.sku LIKE '{like_pattern(glob)}' ESCAPE '\\'"
        not_earlier = "".join(f" AND NOT {e}" for e in earlier)
        for quantity in range(1, p.max_quantity + 1):
            offset = _seconds(cycle * quantity - p.lead)
            bounds[f"low_{offset}"] = stamp(window.start - dt.timedelta(seconds=offset))
            bounds[f"high_{offset}"] = stamp(window.now - dt.timedelta(seconds=offset))
            if quantity == 1:
                held = "l.quantity <= 1"
            elif quantity == p.max_quantity:
                held = f"l.quantity >= {quantity}"
            else:
                held = f"l.quantity = {quantity}"
            branches.append(
                f"SELECT l.id, l.customer_id, datetime(l.placed_at, '{offset} seconds') AS due_at, l.sku, "
                f"l.placed_at, l.order_id FROM order_line l "
                f"WHERE l.placed_at > :low_{offset} AND l.placed_at <= :high_{offset} "
                f"AND {pattern}{not_earlier} AND {held}")
        earlier.append(pattern)
    due = f"""
        WITH line AS ({' UNION ALL '.join(branches)})
        SELECT 'line:' || line.id, line.customer_id, line.due_at
        FROM line JOIN orders o ON o.id = line.order_id
        WHERE o.cancelled_at IS NULL AND line.due_at > :start_text AND line.due_at <= :now_text
          AND NOT EXISTS (SELECT 1 FROM order_line later JOIN orders lo ON lo.id = later.order_id
                          WHERE later.customer_id = line.customer_id AND later.sku = line.sku
                            AND later.placed_at > line.placed_at AND later.placed_at <= :now
                            AND lo.cancelled_at IS NULL)"""
    return _finish(conn, campaign, window, due, {"start_text": window.start.strftime("%Y-%m-%d %H:%M:%S"),
                                                 "now_text": window.now.strftime("%Y-%m-%d %H:%M:%S"), **bounds})


def journey_steps_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """A journey's later steps: per step, the settled ledger rows of the step before (updated recently
    enough to fall due in reach), due `after` the journey began or that row settled, and never before it
    settled; found with an exit (an order since the journey began) whatever the audience."""
    found: Found = set()
    exits = "', '".join(("exit_ordered", "exit_clicked"))
    reach = window.start - campaign.spec.expire_after
    for step in range(2, len(campaign.spec.steps) + 1):
        spec = campaign.spec.steps[step - 1]
        journey = ("p.occurrence_key" if step == 2
                   else f"substr(p.occurrence_key, 1, length(p.occurrence_key) - {len(f'#{step - 1}')})")
        began = "p.due_at" if step == 2 else "f.due_at"
        settled = "coalesce(p.sent_at, p.updated_at)"
        wait = f"datetime({settled if spec.from_ == 'previous' else began}, '{_seconds(spec.after)} seconds')"
        exit_checks = []
        if "ordered" in campaign.spec.exit:
            exit_checks.append(f"EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = p.customer_id "
                               f"AND o.placed_at > {began} AND o.placed_at <= :now "
                               f"AND (o.cancelled_at IS NULL OR o.cancelled_at > :now))")
        if "clicked" in campaign.spec.exit:
            exit_checks.append("EXISTS (SELECT 1 FROM event e WHERE e.send_id = p.id AND e.type = 'clicked' "
                               "AND e.occurred_at <= :now)")
        first = "" if step == 2 else f"JOIN send f ON f.campaign_id = :campaign AND f.occurrence_key = {journey}"
        params: Params = {"campaign": campaign.id, "now": stamp(window.now), "reach": stamp(reach),
                          "updated": stamp(reach - spec.after)}
        rows = conn.execute(f"""
            SELECT key, customer_id, due_at FROM (
                SELECT {journey} || '#{step}' AS key, p.customer_id,
                       CASE WHEN {wait} > {settled} THEN {wait} ELSE {settled} END AS due_at,
                       {' OR '.join(exit_checks) or '0'} AS exited, c.email, c.accepts_marketing, s.reason,
                       {_audience(campaign, window, params)} AS in_audience
                FROM send p {first}
                JOIN customer c ON c.id = p.customer_id LEFT JOIN suppression s ON s.email = c.email
                WHERE p.campaign_id = :campaign AND p.step = {step - 1} AND p.status IN ('sent', 'skipped', 'failed')
                  AND (p.skip_reason IS NULL OR p.skip_reason NOT IN ('{exits}')) AND p.updated_at > :updated)
            WHERE due_at <= :now AND due_at > :reach AND (exited OR in_audience)
              AND NOT EXISTS (SELECT 1 FROM send n WHERE n.campaign_id = :campaign AND n.occurrence_key = key)
        """, params).fetchall()
        found |= {(key, customer, iso(due_at)) for key, customer, due_at in rows}
    return found


FLOORS: dict[str, Callable[[sqlite3.Connection, Campaign, Window], Found]] = {
    "order": order_floor,
    "lapsed": lapsed_floor,
    "abandoned_checkout": abandoned_checkout_floor,
    "predicted_reorder": predicted_reorder_floor,
    "milestone": milestone_floor,
    "birthday": birthday_floor,
    "anniversary": anniversary_floor,
    "replenishment": replenishment_floor,
}


def floor_due(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """The campaign's due set in the window, found by its trigger type's floor (KeyError without one)."""
    if campaign.spec.steps and len(campaign.spec.steps) > 1:
        return FLOORS[campaign.trigger.type_name](conn, campaign, window) | journey_steps_floor(conn, campaign, window)
    return FLOORS[campaign.trigger.type_name](conn, campaign, window)
