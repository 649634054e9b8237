"""`report`, `customers` and `nps`: what campaigns achieved, the shop's retention figures and segments,
and its Net Promoter Score."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator

import click
from rich.console import Console
from rich.table import Table

from .. import settings as s
from ..durations import format_duration
from ..money import Money, exponent
from ..reports.campaigns import EVENT_TYPES, CampaignResult
from ..reports.customers import CustomerFigures
from ..reports.nps import NpsFigures
from ..segments import SEGMENT_NAMES
from ..store import iso_utc
from .base import AT, Env, cli, parse_instant, pass_env
from .output import table

FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                      show_default=True, help="How to print the figures.")


def _money(cents: float | None, currency: str) -> str:
    return "-" if cents is None else str(Money(round(cents), currency))


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


@cli.command()
@AT
@click.option("--period", metavar="DURATION", help="Measure retention and frequency over this period "
              "(default LIFECYCLE_REPORT_PERIOD, 365d).")
@click.option("--segment", type=click.Choice(SEGMENT_NAMES), help="List the customers in this segment instead "
              "(the email of each; customer_id,email with --format csv; a JSON array with --format json).")
@FORMAT
@pass_env
def customers(env: Env, at: str | None, period: str | None, segment: str | None, fmt: str) -> None:
    """Customer lifetime value, repeat purchase and retention rates, and the size of each segment.

    Computed from the orders placed by --at (default now), so a past instant shows the shop as it was.
    """
    from ..reports.rules import REPORT_PERIOD, parse_days

    if segment is not None:
        _list_segment(env, parse_instant(at), segment, fmt)
        return

    if period is not None:
        try:
            span = parse_days(period)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--period") from None
    else:
        span = env.settings[REPORT_PERIOD]
    currency = env.settings[s.SHOP_CURRENCY]
    app = env.app
    figures = app.customer_figures(parse_instant(at), span, app.segment_rules)
    if fmt == "json":
        click.echo(json.dumps(figures.as_dict(), indent=2))
        return
    rows = [
        ("customers with an order", f"{figures.customers:,}"),
        ("orders", f"{figures.orders:,}"),
        ("revenue", _money(figures.revenue_cents, currency)),
        ("revenue per customer", _money(figures.revenue_per_customer_cents, currency)),
        ("repeat purchase rate", _share(figures.repeat_purchase_rate)),
        (f"retention rate ({figures.period_days:g} days)", _share(figures.retention_rate)),
        ("average order value", _money(figures.average_order_value_cents, currency)),
        ("purchase frequency", _number(figures.purchase_frequency)),
        ("customer lifespan (years)", _number(figures.lifespan_years)),
        ("customer lifetime value", _money(figures.lifetime_value_cents, currency)),
    ]
    if fmt == "csv":  # long form, plain numbers (amounts in major units), for spreadsheets
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["figure", "value"])
        for name, value in _plain_figures(figures):
            writer.writerow([name, "" if value is None else value])
        return
    console = Console()
    summary = table(f"Customers as of {figures.at:%Y-%m-%d %H:%M} UTC", ["figure", "value"], show_header=False)
    for row in rows:
        summary.add_row(*row)
    console.print(summary)
    rules = "; ".join(f"{seg.name}: {seg.description}" for seg in figures.segments)
    segments = table("Segments", ["segment", "customers", "share", "revenue", "AOV"], caption=rules,
                     caption_justify="left")
    for seg in figures.segments:
        segments.add_row(seg.name, f"{seg.customers:,}", _share(seg.share), _money(seg.revenue_cents, currency),
                         _money(seg.aov_cents, currency))
    console.print(segments)


def _list_segment(env: Env, at: dt.datetime, segment: str, fmt: str) -> None:
    """The segment's customers, streamed: one line each, so a segment of any size lists in flat memory."""
    members = env.app.segment_members(at, segment)
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["customer_id", "email"])
        writer.writerows(members)
        return
    if fmt == "json":
        separator = "["
        for _, email in members:
            click.echo(separator + json.dumps(email), nl=False)
            separator = ",\n"
        click.echo("[]" if separator == "[" else "]")
        return
    count = 0
    for _, email in members:
        click.echo(email)
        count += 1
    click.echo(f"{count:,} customer(s) in {segment} as of {at:%Y-%m-%d %H:%M} UTC", err=True)


def _plain_figures(figures: CustomerFigures) -> list[tuple[str, float | int | None]]:
    """Every figure as (name, number), amounts in major units."""
    scale = 10 ** exponent(figures.currency)

    def major(cents: float | None) -> float | None:
        return None if cents is None else round(cents / scale, 2)

    rows: list[tuple[str, float | int | None]] = [
        ("customers", figures.customers), ("orders", figures.orders), ("revenue", major(figures.revenue_cents)),
        ("revenue_per_customer", major(figures.revenue_per_customer_cents)),
        ("repeat_purchase_rate", figures.repeat_purchase_rate), ("retention_rate", figures.retention_rate),
        ("average_order_value", major(figures.average_order_value_cents)),
        ("purchase_frequency", figures.purchase_frequency), ("lifespan_years", figures.lifespan_years),
        ("lifetime_value", major(figures.lifetime_value_cents)),
    ]
    for seg in figures.segments:
        rows += [(f"segment.{seg.name}.customers", seg.customers), (f"segment.{seg.name}.share", seg.share),
                 (f"segment.{seg.name}.revenue", major(seg.revenue_cents)),
                 (f"segment.{seg.name}.aov", major(seg.aov_cents))]
    return rows


@cli.command()
@click.option("--since", metavar="ISO-DATE", help="Start of the period (default: 30 days before --until).")
@click.option("--until", metavar="ISO-DATE", help="End of the period (default: now).")
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID", help="Only this campaign (repeatable).")
@FORMAT
@pass_env
def report(env: Env, since: str | None, until: str | None, campaign_ids: tuple[str, ...], fmt: str) -> None:
    """Per campaign, variant and journey step: emails sent, provider events, and orders and revenue
    attributed to them (last touch); each variant's conversion rate against the control's."""
    import datetime as dt

    from ..reports.rules import ATTRIBUTION_WINDOW

    end = parse_instant(until)
    start = parse_instant(since) if since else end - dt.timedelta(days=30)
    if start >= end:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    window = env.settings[ATTRIBUTION_WINDOW]
    currency = env.settings[s.SHOP_CURRENCY]
    results = env.app.campaign_results(start, end, window, list(campaign_ids) or None)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    elif fmt == "csv":
        _results_csv(results, currency)
    else:
        _results_tables(results, f"Emails {start:%Y-%m-%d} to {end:%Y-%m-%d}",
                        f"Orders within {format_duration(window)} of an email (last touch)", currency)


def _rows(results: list[CampaignResult]) -> Iterator[tuple[str, CampaignResult]]:
    """Each campaign's figures, then its variants' (indented, the control first) and its journey steps',
    with their table labels."""
    for result in results:
        yield result.campaign_id, result
        for variant in result.variants:
            yield f"  {variant.variant}", variant
        for step in result.steps:
            yield f"  step {step.step}", step


def _results_csv(results: list[CampaignResult], currency: str) -> None:
    """A row per campaign, per variant and per journey step; plain numbers, amounts in major units, empty
    where unknown."""
    scale = 10 ** exponent(currency)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["campaign", "variant", "step", "sent", "failed", "skipped", *EVENT_TYPES, "conversions",
                     "converted", "revenue", "conversion_rate", "conversion_rate_low", "conversion_rate_high",
                     "difference_vs_control", "p_value", "significant"])
    for _, r in _rows(results):
        low, high = r.conversion_interval or (None, None)
        test = r.versus_control
        writer.writerow(["" if v is None else v for v in (
            r.campaign_id, r.variant, r.step, r.sent, r.failed, r.skipped, *(r.events[e] for e in EVENT_TYPES),
            r.conversions, r.converted, round(r.revenue_cents / scale, 2), r.conversion_rate, low, high,
            *((test.difference, test.p_value, test.significant) if test else (None, None, None)))])


def _labelled(result: Table) -> Table:
    """A table whose first column (campaigns and their variants) gives way first at 80 columns: a long
    name ends in an ellipsis, and the figures are never cut."""
    result.columns[0].no_wrap, result.columns[0].overflow = False, "ellipsis"
    return result


def _results_tables(results: list[CampaignResult], delivery_title: str, outcome_title: str, currency: str) -> None:
    console = Console()
    delivery = _labelled(table(delivery_title, ["campaign", "sent", "failed", "deliv.", "opens", "clicks", "bounce",
                                                "spam", "unsub"]))
    for label, r in _rows(results):
        delivery.add_row(label, f"{r.sent:,}", f"{r.failed:,}",
                         *("?" if r.events[e] is None else f"{r.events[e]:,}" for e in EVENT_TYPES))
    console.print(delivery)
    if any(v is None for r in results for v in r.events.values()):
        console.print("? = no provider events recorded (set up webhooks: docs/deliverability.md)")
    outcome = _labelled(table(outcome_title, ["campaign", "sent", "orders", "revenue", "conv. rate", "95% interval"]))
    for label, r in _rows(results):
        interval = r.conversion_interval
        outcome.add_row(label, f"{r.sent:,}", f"{r.conversions:,}", _money(r.revenue_cents, currency),
                        _share(r.conversion_rate),
                        "-" if interval is None else f"{interval[0]:.1%} to {interval[1]:.1%}")
    console.print(outcome)
    tested = [(r.campaign_id, v) for r in results for v in r.variants if v.control is not None]
    if not tested:
        return
    versus = table("Each variant against the control (two-proportion z-test)",
                   ["campaign", "variant", "control", "difference", "p-value", "significant"])
    for campaign_id, v in tested:
        test = v.versus_control
        if test is None:  # a group without sends, or no conversions anywhere: nothing to compare yet
            versus.add_row(campaign_id, v.variant, v.control, "-", "-", "-")
            continue
        versus.add_row(campaign_id, v.variant, v.control, f"{test.difference * 100:+.1f} pts",
                       "<0.001" if test.p_value < 0.001 else f"{test.p_value:.3f}", "yes" if test.significant else "no")
    console.print(versus)


@cli.command()
@click.option("--since", metavar="ISO-DATE", help="Start of the range (default: 12 periods before --until).")
@click.option("--until", metavar="ISO-DATE", help="End of the range, excluded (default: now).")
@click.option("--period", type=click.Choice(["month", "week"]), default="month", show_default=True,
              help="Group the answers by calendar month or ISO week (UTC).")
@FORMAT
@pass_env
def nps(env: Env, since: str | None, until: str | None, period: str, fmt: str) -> None:
    """Net Promoter Score per period: promoters (9-10), passives (7-8), detractors (0-6), and
    NPS = % promoters - % detractors with its 95 % interval, from the score links in emails."""
    import datetime as dt

    end = parse_instant(until)
    start = parse_instant(since) if since else end - dt.timedelta(days=365 if period == "month" else 84)
    if start >= end:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    found = env.app.nps_report(start, end, "month" if period == "month" else "week")
    rows = [*found.periods, found.total]
    if fmt == "json":
        click.echo(json.dumps({"since": iso_utc(start), "until": iso_utc(end), "period": period,
                               "periods": [f.as_dict() for f in found.periods], "total": found.total.as_dict()},
                              indent=2))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["period", "responses", "promoters", "passives", "detractors", "nps", "nps_low", "nps_high"])
        for f in rows:
            low, high = f.interval or (None, None)
            writer.writerow(["" if v is None else v for v in (
                f.period or "total", f.responses, f.promoters, f.passives, f.detractors, f.nps, low, high)])
        return
    shown = table(f"Net Promoter Score, {start:%Y-%m-%d} to {end:%Y-%m-%d} (by {period}, UTC)",
                  ["period", "responses", "promoters", "passives", "detractors", "NPS", "95% interval"],
                  caption="NPS = % promoters (9-10) - % detractors (0-6); passives: 7-8",
                  caption_justify="left")
    for f in rows:
        shown.add_row(f.period or "total", *(f"{v:,}" for v in (f.responses, f.promoters, f.passives, f.detractors)),
                      _score(f), _score_interval(f))
    Console().print(shown)


def _score(figures: NpsFigures) -> str:
    return "-" if figures.nps is None else f"{figures.nps:+.0f}"


def _score_interval(figures: NpsFigures) -> str:
    interval = figures.interval
    return "-" if interval is None else f"{interval[0]:+.0f} to {interval[1]:+.0f}"
