"""`init`, `import` and `refresh-affinity`: creating the store, filling it from Shopify's exports, and
rebuilding what is derived from the orders."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import settings as s
from ..errors import DataImportError
from .base import AT, Env, cli, parse_instant, pass_env, utcnow
from .output import progress_counter


@cli.command()
@pass_env
def init(env: Env) -> None:
    """Create the store, or upgrade an existing one in place to this version's schema (safe to run again)."""
    click.echo(env.app.store.init())


@cli.command("refresh-affinity")
@AT
@pass_env
def refresh_affinity(env: Env, at: str | None) -> None:
    """Rebuild the "often bought with" table from the last year's orders and record the VIP spend threshold
    (daily from cron when you run `lifecycle tick` rather than the daemon)."""
    started = time.perf_counter()
    env.app.refresh_affinity(parse_instant(at))
    click.echo(f"Product affinity rebuilt from the orders of the last year in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    recorded = env.app.refresh_vip_threshold(parse_instant(at))
    click.echo(f"VIP spend threshold recorded in {time.perf_counter() - started:.1f} s" if recorded
               else "No VIP spend threshold recorded: no customer has ordered yet")


# ---------------------------------------------------------------- import

@cli.group("import")
def import_group() -> None:
    """Import Shopify exports (customers, orders, products, abandoned checkouts), delivery times or a plain
    transaction log. A file with a bad row changes nothing."""


def _import(env: Env, kind: str, path: Path) -> None:
    from ..importers import shopify
    from ..importers.deliveries import import_deliveries
    from ..importers.transactions import import_transactions

    app = env.app
    app.store.check()
    importer = {"customers": shopify.import_customers, "orders": shopify.import_orders,
                "products": shopify.import_products, "transactions": import_transactions,
                "checkouts": shopify.import_checkouts, "deliveries": import_deliveries}[kind]
    kwargs: dict[str, Any] = {} if kind == "deliveries" else {"now": utcnow().replace(tzinfo=None)}
    if kind in ("orders", "transactions", "checkouts", "deliveries"):  # times without offset: the shop's zone
        kwargs["default_zone"] = env.settings[s.DEFAULT_TIMEZONE]
    if kind in ("orders", "transactions"):
        kwargs["shop_currency"] = env.settings[s.SHOP_CURRENCY]
    try:
        with progress_counter(f"Importing {path.name}", unit="rows") as progress:
            report = importer(app.store, path, progress=progress, **kwargs)
    except DataImportError as exc:
        _print_problems(exc)
        raise
    click.echo(report.summary())
    if kind in ("orders", "transactions"):  # a first import, or the first of the day: `segment: vip` needs one
        app.refresh_vip_threshold(kwargs["now"], only_if_stale=True)
    shown = report.warnings if env.verbose else report.warnings[:5]
    for warning in shown:
        click.echo(f"warning: {warning}", err=True)
    hidden = len(report.warnings) - len(shown) + report.warnings_not_shown
    if hidden:
        click.echo(f"... and {hidden} more warning(s); --verbose shows up to {len(report.warnings)}", err=True)


def _print_problems(error: DataImportError) -> None:
    """Every bad row the import found, one line each; the error itself then repeats the first with its hint."""
    if len(error.problems) == 1 and not error.unlisted:
        return
    for problem in error.problems:
        hint = f" (hint: {problem.hint})" if problem.hint and problem.hint != error.hint else ""
        click.echo(f"{problem}{hint}", err=True)
    if error.unlisted:
        click.echo(f"... and {error.unlisted} more problem(s) not listed", err=True)


@import_group.command("customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_customers(env: Env, file: Path) -> None:
    """Import Shopify's customers export (CSV)."""
    _import(env, "customers", file)


@import_group.command("transactions")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_transactions(env: Env, file: Path) -> None:
    """Import a plain transaction log: customer id, date, quantity and amount per purchase (CSV, or columns
    separated by spaces)."""
    _import(env, "transactions", file)


@import_group.command("orders")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_orders(env: Env, file: Path) -> None:
    """Import Shopify's orders export (CSV, one row per line item)."""
    _import(env, "orders", file)


@import_group.command("products")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_products(env: Env, file: Path) -> None:
    """Import Shopify's products export (CSV)."""
    _import(env, "products", file)


@import_group.command("checkouts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_checkouts(env: Env, file: Path) -> None:
    """Import Shopify's abandoned checkouts export (CSV, one row per line item)."""
    _import(env, "checkouts", file)


@import_group.command("deliveries")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_deliveries(env: Env, file: Path) -> None:
    """Import delivery times: a CSV of Order (Id or name, such as #1001) and Delivered at."""
    _import(env, "deliveries", file)
