"""`customers`: the shop's retention figures and segments, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys

import click
from rich.console import Console
from rich.table import Table

from .. import settings as s
from ..money import Money, exponent
from ..reports.customers import CustomerFigures
from .base import AT, Env, cli, parse_instant, pass_env

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
@FORMAT
@pass_env
def customers(env: Env, at: str | None, period: str | None, fmt: str) -> None:
    """Customer lifetime value, repeat purchase and retention rates, and the size of each segment.

    Computed from the orders placed by --at (default now), so a past instant shows the shop as it was.
    """
    from ..reports.rules import REPORT_PERIOD, parse_days, segment_rules

    if period is not None:
        try:
            span = parse_days(period)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--period") from None
    else:
        span = env.settings[REPORT_PERIOD]
    currency = env.settings[s.SHOP_CURRENCY]
    figures = env.app.customer_figures(parse_instant(at), span, segment_rules(env.settings, currency))
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
    summary = Table(title=f"Customers as of {figures.at:%Y-%m-%d %H:%M} UTC", show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    for row in rows:
        summary.add_row(*row)
    console.print(summary)
    rules = "; ".join(f"{seg.name}: {seg.description}" for seg in figures.segments)
    table = Table(title="Segments", caption=rules, caption_justify="left")
    for name in ("segment", "customers", "share", "revenue", "AOV"):
        table.add_column(name, justify="left" if name == "segment" else "right", no_wrap=True)
    for seg in figures.segments:
        table.add_row(seg.name, f"{seg.customers:,}", _share(seg.share), _money(seg.revenue_cents, currency),
                      _money(seg.aov_cents, currency))
    console.print(table)


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
