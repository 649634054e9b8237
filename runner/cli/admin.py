"""`settings`: looking at the configuration."""

from __future__ import annotations

import click

from .. import settings as s
from .base import Env, cli, pass_env


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

