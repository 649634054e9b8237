"""The `lifecycle` command: parses arguments, calls the library, and turns errors into one line.

One module per command group (as beets does); each registers its commands on the group in `base`.
"""

from __future__ import annotations

import sys
import traceback

import click
from sqlalchemy.exc import SQLAlchemyError

from ..errors import LifecycleError
from ..store import describe_database_error
from . import (  # noqa: F401 - importing registers the commands
    admin,
    campaigns,
    coupons,
    customers,
    reports,
    simulate,
    store,
    suppressions,
    web,
)
from .base import cli

__all__ = ["cli", "main"]

VERBOSE_FLAGS = ("-v", "--verbose")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in VERBOSE_FLAGS for a in args)
    if verbose:  # accepted anywhere: `lifecycle tick --verbose` as well as `lifecycle --verbose tick`
        args = ["--verbose", *(a for a in args if a not in VERBOSE_FLAGS)]
    try:
        cli.main(args=args, prog_name="lifecycle", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (LifecycleError, SQLAlchemyError) as exc:
        if verbose:
            traceback.print_exc()
        # SQLAlchemy's own message carries the statement and its parameters: never shown as such
        error = describe_database_error(exc) if isinstance(exc, SQLAlchemyError) else exc
        click.echo(f"Error: {error}", err=True)
        if error.hint:
            click.echo(f"Hint: {error.hint}", err=True)
        sys.exit(1)
    except Exception as exc:  # the last resort: one line unless --verbose
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo("Hint: run again with --verbose for the traceback, and report it if it persists", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
