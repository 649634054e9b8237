"""What every command module shares: the group, the settings it loads, the clock and --at."""

from __future__ import annotations

import datetime as dt
import logging

import click

from .. import __version__
from ..app import App
from ..settings import Settings


def utcnow() -> dt.datetime:
    """The clock, read only here at the edge."""
    return dt.datetime.now(dt.UTC)


def parse_instant(value: str | None) -> dt.datetime:
    """--at ISO-DATETIME (naive means UTC), or now."""
    if value is None:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time; write e.g. 2026-11-23T09:00:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Env:
    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.settings = Settings.load()

    @property
    def app(self) -> App:
        return App(self.settings)


pass_env = click.make_pass_decorator(Env)
AT = click.option("--at", "at", metavar="ISO-DATETIME",
                  help="Evaluate at this instant instead of now (UTC if no offset).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lifecycle")
@click.option("-v", "--verbose", is_flag=True, help="Log more, and show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Lifecycle email campaigns for online shops.

    Settings come from LIFECYCLE_* environment variables and a .env file; see config.example.env.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = Env(verbose)
