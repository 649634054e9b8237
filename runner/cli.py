"""The `lifecycle` command: parses arguments, calls the library, and turns errors into one line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__
from . import settings as s
from .app import App, TickReport
from .errors import LifecycleError
from .models import SuppressionReason
from .providers.base import Outcome
from .settings import Settings


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
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = Env(verbose)


@cli.command()
@pass_env
def init(env: Env) -> None:
    """Create the store's tables (safe to run again)."""
    app = env.app
    created = app.store.init()
    click.echo(f"{'Created' if created else 'Already initialised:'} {app.store.display_url}")


# ---------------------------------------------------------------- import

@cli.group("import")
def import_group() -> None:
    """Import Shopify exports (customers, orders, products). A file with a bad row changes nothing."""


def _import(env: Env, kind: str, path: Path) -> None:
    from .importers import shopify
    from .recommend import refresh_affinity

    app = env.app
    app.store.check()
    importer = {"customers": shopify.import_customers, "orders": shopify.import_orders,
                "products": shopify.import_products}[kind]
    kwargs: dict[str, Any] = {"now": utcnow().replace(tzinfo=None)}
    if kind == "orders":  # its timestamps may lack an offset: they are in the shop's zone
        kwargs["default_zone"] = env.settings[s.DEFAULT_TIMEZONE]
    with click.progressbar(length=0, label=f"Importing {path.name}", show_pos=True,
                           file=sys.stderr) as bar:
        def progress(done: int) -> None:
            bar.update(done - bar.pos)
        report = importer(app.store, path, progress=progress, **kwargs)
    if kind == "orders":
        with app.store.session() as session:
            refresh_affinity(session, kwargs["now"])
    click.echo(report.summary())
    shown = report.warnings if env.verbose else report.warnings[:5]
    for warning in shown:
        click.echo(f"warning: {warning}", err=True)
    hidden = len(report.warnings) - len(shown) + report.warnings_not_shown
    if hidden:
        click.echo(f"... and {hidden} more warning(s); --verbose shows up to {len(report.warnings)}", err=True)


@import_group.command("customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_customers(env: Env, file: Path) -> None:
    """Import Shopify's customers export (CSV)."""
    _import(env, "customers", file)


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


# ---------------------------------------------------------------- campaigns

@cli.command()
@pass_env
def validate(env: Env) -> None:
    """Check every campaign file and template; exit non-zero on any problem."""
    campaigns, problems = env.app.problems(utcnow())
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise LifecycleError(f"{len(problems)} problem(s) in the campaign set; "
                             "nothing will be sent until they are fixed",
                             "fix each file and line above, then run `lifecycle validate` again")
    click.echo(f"OK: {len(campaigns)} campaign(s) valid: {', '.join(c.id for c in campaigns)}")


def print_report(report: TickReport) -> None:
    rows = report.rows()
    header = f"{'campaign':<16} {'due':>6} {'sent':>6} {'failed':>6} {'retrying':>8}  skipped"
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        skipped = ", ".join(f"{k}={v}" for k, v in row["skipped"].items()) or "-"
        click.echo(f"{row['campaign']:<16} {row['due']:>6} {row['sent']:>6} {row['failed']:>6} "
                   f"{row['retrying']:>8}  {skipped}")


@cli.command()
@AT
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID", help="Only this campaign (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_env
def tick(env: Env, at: str | None, campaign_ids: tuple[str, ...], as_json: bool) -> None:
    """Evaluate and send once (for running from cron)."""
    now = parse_instant(at)
    app = env.app
    campaigns = app.campaigns(now, list(campaign_ids) or None)
    with app.provider() as provider:
        report = app.tick(now, campaigns, provider)
    if as_json:
        click.echo(json.dumps(report.rows(), indent=2))
    else:
        print_report(report)


@cli.command()
@AT
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID", help="Only this campaign (repeatable).")
@click.option("--customer", metavar="EMAIL", help="Only this customer.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("preview"),
              show_default=True, help="Folder for the rendered HTML and index.html.")
@click.option("--json", "as_json", is_flag=True, help="Print the occurrences as JSON instead of a table.")
@pass_env
def preview(env: Env, at: str | None, campaign_ids: tuple[str, ...], customer: str | None, out: Path,
            as_json: bool) -> None:
    """Show exactly what a tick at an instant would send, rendered to HTML; changes nothing."""
    from .preview import write_preview

    now = parse_instant(at)
    app = env.app
    items = app.preview(now, app.campaigns(now, list(campaign_ids) or None), customer)
    summary = write_preview(items, out, now)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    for entry in summary:
        status = entry["skip_reason"] or ("error: " + entry["error"] if entry["error"] else "send")
        click.echo(f"{entry['campaign']:<16} {entry['email']:<36} {status:<12} {entry['reason']}")
    click.echo(f"{len(summary)} occurrence(s); open {out / 'index.html'} to browse the rendered emails")


@cli.command()
@pass_env
def run(env: Env) -> None:
    """Run the scheduler daemon: each enabled campaign on its own schedule. SIGHUP reloads campaigns."""
    from .daemon import Daemon

    Daemon(env.app, clock=utcnow).run_forever()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@pass_env
def serve(env: Env, host: str, port: int) -> None:
    """Serve the signed one-click unsubscribe endpoint (List-Unsubscribe target)."""
    from .unsubscribe import serve as serve_http

    app = env.app
    app.store.check()
    click.echo(f"Serving unsubscribe links on http://{host}:{port}/ (public URL {env.settings[s.PUBLIC_URL]})")
    serve_http(app.store, app.store.signing_key(env.settings[s.SECRET_KEY]), host, port)


@cli.command("send-test")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Where to send the test email.")
@click.option("--campaign", "campaign_id", required=True, metavar="ID")
@click.option("--customer", metavar="EMAIL", help="Render for this customer (default: sample data).")
@pass_env
def send_test(env: Env, to: str, campaign_id: str, customer: str | None) -> None:
    """Send one campaign's email to ADDRESS through the configured provider; not recorded in the ledger."""
    now = utcnow()
    app = env.app
    campaign = app.campaigns(now, [campaign_id])[0]
    with app.provider() as provider:
        result, subject = app.send_test(now, campaign, to, provider, customer)
    if result.outcome is not Outcome.ACCEPTED:
        raise LifecycleError(f"the provider did not accept the test email: {result.error}",
                             "check the provider settings in .env")
    click.echo(f"Sent {subject!r} to {to} via {provider.name} ({result.provider_message_id})")


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
    from .suppressions import suppress as add

    app = env.app
    app.store.check()
    with app.store.session() as session:
        added = add(session, email, reason, utcnow().replace(tzinfo=None), detail="lifecycle suppress")
    click.echo(f"{email}: {'suppressed' if added else 'already suppressed'}")


@cli.command()
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(min=0),
              help="How many synthetic customers.")
@click.option("--seed", default=7, show_default=True)
@AT
@pass_env
def demo(env: Env, customers: int, seed: int, at: str | None) -> None:
    """Create a synthetic demo shop, run one tick with the configured provider and summarise it."""
    from .demo_run import run_demo

    run_demo(env.app, now=parse_instant(at), customers=customers, seed=seed, echo=click.echo,
             print_report=print_report)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a message and an exit code."""
    verbose = any(a in ("-v", "--verbose") for a in (argv if argv is not None else sys.argv[1:]))
    try:
        cli.main(args=argv, prog_name="lifecycle", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except LifecycleError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(1)
    except Exception as exc:  # the last resort: one line unless --verbose
        if verbose:
            traceback.print_exc()
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo("Hint: run again with --verbose for the traceback, and report it if it persists", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
