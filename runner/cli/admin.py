"""`settings` and `new-project`: looking at the configuration, and starting a project folder."""

from __future__ import annotations

from pathlib import Path

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



@cli.command("new-project")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a folder that is not empty (files of the same names are "
              "replaced; an existing .env is kept).")
def new_project(folder: Path, force: bool) -> None:
    """Start a shop's project in FOLDER: the shipped campaigns, templates and _policy.yaml, their JSON Schema,
    and a .env listing every setting, so the tool runs from there rather than from a clone."""
    from ..project import new_project as write_project

    written = write_project(folder, force=force)
    count = {name: sum(1 for p in written if p.relative_to(folder).parts[0] == name)
             for name in ("campaigns", "templates")}
    click.echo(f"Wrote {count['campaigns']} campaign files, {count['templates']} templates, schema/ and "
               f"{'.env' if (folder / '.env') in written else 'kept the existing .env'} in {folder}")
    click.echo("Next:")
    for step in (f"cd {folder}", "edit .env: shop name, address, URL, mail provider (LIFECYCLE_*)",
                 "lifecycle init          # create the store", "lifecycle validate      # check the campaigns",
                 "lifecycle import transactions FILE.csv   # or customers/orders/products, or: lifecycle demo",
                 "lifecycle preview       # what a tick would send, as pages in preview/"):
        click.echo(f"  {step}")
