"""What every command module shares: the group, the settings it loads, the clock and --at."""

from __future__ import annotations

import datetime as dt
import logging

import click

from .. import __version__
from ..app import App
from ..errors import one_line
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


class OneLineFormatter(logging.Formatter):
    """Every record on one line: an exception is shown as its type and first line, the traceback only
    with --verbose (a log line must never spill a traceback, SQL or parameters into the log)."""

    def __init__(self, fmt: str, *, verbose: bool) -> None:
        super().__init__(fmt)
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return super().format(record)
        if record.exc_info and record.exc_info[1] is not None:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "args": (),
                                            "msg": f"{record.getMessage()} ({one_line(record.exc_info[1])})"})
        return " | ".join(super().format(record).splitlines())


class Env:
    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.settings = Settings.load()

    @property
    def app(self) -> App:
        app = App(self.settings)
        # Closed when the command ends, not whenever the garbage collector gets to it: closing the
        # last connection checkpoints a SQLite store's write-ahead log into its file.
        click.get_current_context().call_on_close(app.store.close)
        return app


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
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", verbose=verbose))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic", "tzlocal"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = Env(verbose)
