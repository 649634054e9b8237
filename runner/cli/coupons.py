"""`coupons import|status|export`: pools of unique codes, and the generated codes for the shop to load."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..durations import HINT as DURATION_HINT
from ..durations import parse_duration
from .base import AT, Env, cli, parse_instant, pass_env, utcnow
from .output import print_table, table


@cli.group("coupons")
def coupons_group() -> None:
    """Unique coupon codes: pools of imported codes, and codes generated per send (docs/coupons.md)."""


@coupons_group.command("import")
@click.argument("pool")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_(env: Env, pool: str, file: Path) -> None:
    """Add the codes of FILE (a column named Code, else the first column) to POOL; all or nothing.
    Codes repeated in the file or already in the pool are ignored, so importing a file again adds nothing."""
    click.echo(env.app.import_coupons(pool, file, utcnow()).summary())


@coupons_group.command("status")
@AT
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_env
def status(env: Env, at: str | None, as_json: bool) -> None:
    """Every pool: its codes, how many are left, how many went out lately, the campaigns using it; and a
    warning for each pool in use that runs low."""
    now = parse_instant(at)
    app = env.app
    app.store.check()
    pools = app.coupon_pools(now, app.campaigns(now))
    if as_json:
        click.echo(json.dumps([{"pool": p.pool, "codes": p.codes, "left": p.left, "recent": p.recent,
                                "recent_days": p.warn_days, "campaigns": list(p.campaigns), "warning": p.warning}
                               for p in pools], indent=2))
        return
    days = pools[0].warn_days if pools else 0
    result = table(None, ["pool", "codes", "left", f"out in {days}d", "campaigns"])
    for p in pools:
        result.add_row(p.pool, f"{p.codes:,}", f"{p.left:,}", f"{p.recent:,}", ", ".join(p.campaigns) or "-")
    print_table(result)
    for p in pools:
        if p.warning:
            click.echo(f"warning: {p.warning}", err=True)
    if not pools:
        click.echo("No coupon pool yet: import one with `lifecycle coupons import POOL FILE.csv`")


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None):  # type: ignore[no-untyped-def]
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; {DURATION_HINT}") from None


@coupons_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID", help="Only this campaign (repeatable).")
@click.option("--since", metavar="ISO-DATETIME", help="Only sends planned at or after this instant.")
@click.option("--due-within", "due_within", metavar="DURATION", callback=_duration,
              help="Also the codes of emails a tick would plan within this time from now (e.g. 3d).")
@AT
@pass_env
def export(env: Env, file: Path, campaign_ids: tuple[str, ...], since: str | None, due_within: object,
           at: str | None) -> None:
    """Write the generated codes of the ledger's sends (all but skipped ones) to FILE, in the CSV format
    of Shopify's discount bulk import (Title, Command, Code), for the shop to load before they are used."""
    now = parse_instant(at)
    app = env.app
    campaigns = app.campaigns(now, list(campaign_ids) or None)
    written = app.export_coupons(now, campaigns, file, since=parse_instant(since) if since else None,
                                 due_within=due_within)  # type: ignore[arg-type]
    click.echo(f"Wrote {written} code(s) to {file}")
