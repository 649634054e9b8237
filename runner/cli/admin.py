"""`settings` and `suppress`: looking at the configuration and managing who is never emailed."""

from __future__ import annotations

import click

from .. import settings as s
from ..models import SuppressionReason
from .base import Env, cli, pass_env, utcnow


@cli.command("settings")
@click.option("--example", is_flag=True, help="Print every setting with its default (config.example.env).")
@pass_env
def show_settings(env: Env, example: bool) -> None:
    """Show the effective settings (secrets masked)."""
    if example:
        click.echo(s.example_env(), nl=False)
        return
    for section, settings in s.all_settings():
        click.echo(f"[{section}]")
        for name, value in env.settings.redacted(settings).items():
            click.echo(f"{name}={value}")


@cli.command()
@click.argument("email")
@click.option("--reason", type=click.Choice([r.value for r in SuppressionReason]), default="manual",
              show_default=True)
@pass_env
def suppress(env: Env, email: str, reason: str) -> None:
    """Never email EMAIL again (until removed from the suppression table)."""
    from ..suppressions import suppress as add

    app = env.app
    app.store.check()
    with app.store.session() as session:
        added = add(session, email, reason, utcnow().replace(tzinfo=None), detail="lifecycle suppress")
    click.echo(f"{email}: {'suppressed' if added else 'already suppressed'}")
