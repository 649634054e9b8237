"""`customer export|forget`: a customer's rights of access and erasure (runner/privacy/)."""

from __future__ import annotations

from pathlib import Path

import click

from ..store import utc_naive
from .base import Env, cli, pass_env, utcnow


@cli.group("customer")
def customer_group() -> None:
    """A customer's data rights: export what the store holds on them, or erase it."""


@customer_group.command("export")
@click.argument("email")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the JSON to this file instead of standard output.")
@pass_env
def export(env: Env, email: str, out: Path | None) -> None:
    """Everything the store holds about the customer with EMAIL, as JSON: profile, tags, consent history,
    orders with lines, sends and suppressions. Changes nothing."""
    from ..privacy.export import describe, export_customer, to_json

    app = env.app
    app.store.check()
    with app.store.reading() as session:
        document = export_customer(session, email, utc_naive(utcnow()))
    if out is None:
        click.echo(to_json(document), nl=False)
        click.echo(describe(document), err=True)
    else:
        out.write_text(to_json(document), encoding="utf-8")
        click.echo(f"Wrote {out}: {describe(document)}", err=True)


@customer_group.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_env
def forget(env: Env, email: str, yes: bool) -> None:
    """Erase the personal data of the customer with EMAIL for good (the right to erasure).

    Orders' amounts and dates and the ledger's statuses stay for the shop's figures; the address
    stays only as a keyed hash on the suppression list, so it is never mailed again. Safe to repeat.
    """
    from ..privacy.forget import forget_customer
    from ..privacy.forgotten import requested_address

    address = requested_address(email)  # refuse a non-address before asking anything
    app = env.app
    app.store.check()
    if not yes:
        click.confirm(f"Erase the personal data of {address}? This cannot be undone", abort=True)
    with app.store.session() as session:
        erasure = forget_customer(session, address, utc_naive(utcnow()))
    click.echo(erasure.summary())
