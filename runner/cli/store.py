"""`init` and `import`: creating the store and filling it from Shopify's exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import settings as s
from ..errors import DataImportError
from .base import Env, cli, pass_env, utcnow
from .output import progress_counter


@cli.command()
@pass_env
def init(env: Env) -> None:
    """Create the store, or upgrade an existing one in place to this version's schema (safe to run again)."""
    click.echo(env.app.store.init())


# ---------------------------------------------------------------- import

@cli.group("import")
def import_group() -> None:
    """Import Shopify exports (customers, orders, products) or a plain transaction log. A file with a bad row
    changes nothing."""


def _import(env: Env, kind: str, path: Path) -> None:
    from ..importers import shopify
    from ..importers.transactions import import_transactions

    app = env.app
    app.store.check()
    importer = {"customers": shopify.import_customers, "orders": shopify.import_orders,
                "products": shopify.import_products, "transactions": import_transactions}[kind]
    kwargs: dict[str, Any] = {"now": utcnow().replace(tzinfo=None)}
    if kind in ("orders", "transactions"):  # its timestamps may lack an offset: they are in the shop's zone
        kwargs["default_zone"] = env.settings[s.DEFAULT_TIMEZONE]
        kwargs["shop_currency"] = env.settings[s.SHOP_CURRENCY]
    try:
        with progress_counter(f"Importing {path.name}", unit="rows") as progress:
            report = importer(app.store, path, progress=progress, **kwargs)
    except DataImportError as exc:
        _print_problems(exc)
        raise
    click.echo(report.summary())
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
