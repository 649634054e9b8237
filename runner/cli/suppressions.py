"""`suppress add|remove|list|import`: the addresses that are never emailed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import LifecycleError
from ..models import SuppressionReason, normalise_email
from ..privacy.consent import MANUAL
from ..store import iso_utc
from .base import Env, cli, pass_env, utcnow
from .output import progress_counter

REASONS = click.Choice([r.value for r in SuppressionReason])
SOURCE = MANUAL


@cli.group("suppress")
def suppress_group() -> None:
    """Manage the suppression list: addresses no campaign ever emails."""


@suppress_group.command("add")
@click.argument("email")
@click.option("--reason", type=REASONS, default="manual", show_default=True)
@pass_env
def add(env: Env, email: str, reason: str) -> None:
    """Never email EMAIL again (until it is removed)."""
    from ..suppressions import checked_address, suppress

    try:
        address = checked_address(email)
    except ValueError as exc:
        raise LifecycleError(str(exc), "check the address; nothing was changed") from None
    app = env.app
    app.store.check()
    with app.store.session() as session:
        added = suppress(session, address, reason, utcnow().replace(tzinfo=None), detail="lifecycle suppress add",
                         source=SOURCE)
    click.echo(f"{address}: {'suppressed' if added else 'already suppressed'}")


@suppress_group.command("remove")
@click.argument("email")
@pass_env
def remove(env: Env, email: str) -> None:
    """Take EMAIL off the list (recorded in the history; marketing consent is not given back)."""
    from ..suppressions import remove_suppression

    app = env.app
    app.store.check()
    with app.store.session() as session:
        reason = remove_suppression(session, email, utcnow().replace(tzinfo=None), SOURCE,
                                    detail="lifecycle suppress remove")
        session.commit()
    if reason is None:
        raise LifecycleError(f"{normalise_email(email)} is not on the suppression list",
                             "check the spelling; `lifecycle suppress list` shows who is")
    click.echo(f"{normalise_email(email)}: removed (was {reason}); it may be emailed again, "
               "marketing only after a new opt-in")


@suppress_group.command("list")
@click.option("--reason", type=REASONS, help="Only this reason.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_env
def list_(env: Env, reason: str | None, as_json: bool) -> None:
    """Every suppressed address, oldest first."""
    from ..suppressions import list_suppressions

    app = env.app
    app.store.check()
    with app.store.session() as session:
        rows = list_suppressions(session, reason)
        if as_json:
            separator = "["
            for row in rows:
                record = {"email": row.email, "reason": row.reason, "created_at": iso_utc(row.created_at),
                          "source": row.source, "detail": row.detail}
                click.echo(separator + json.dumps(record), nl=False)
                separator = ",\n"
            click.echo("[]" if separator == "[" else "]")
            return
        click.echo(f"{'email':<40} {'reason':<13} {'since (UTC)':<17} source")
        count = 0
        for row in rows:
            count += 1
            click.echo(f"{row.email:<40} {row.reason:<13} {row.created_at:%Y-%m-%d %H:%M} {row.source or '-'}")
    click.echo(f"{count} suppressed address(es)")


@suppress_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", type=REASONS,
              help="The reason for every row (for files whose reason column is free text, or that have none).")
@pass_env
def import_(env: Env, file: Path, reason: str | None) -> None:
    """Suppress every address in a CSV export (Postmark, SendGrid, Mailgun, Resend) or a plain list.
    A bad row stops the import with its row and column; nothing is then written."""
    from ..importers.suppressions import import_suppressions

    app = env.app
    app.store.check()
    with progress_counter(f"Importing {file.name}", unit="rows") as progress:
        report = import_suppressions(app.store, file, now=utcnow(), reason=reason, progress=progress)
    click.echo(report.summary())
