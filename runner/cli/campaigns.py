"""Commands that evaluate campaigns: validate, preview, tick, run, send-test and demo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import settings as s
from ..errors import LifecycleError
from ..providers.base import Outcome
from ..results import TickReport
from .base import AT, Env, cli, parse_instant, pass_env, utcnow
from .output import print_preview_summary, print_table, progress_counter, table


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
    result = table(None, ["campaign", "due", "sent", "failed", "retrying", "deferred", "skipped"])
    for column in result.columns[-2:]:  # one reason=count a line, folded rather than cut when narrow
        column.justify, column.no_wrap, column.overflow = "left", False, "fold"
    for row in report.rows():
        deferred, skipped = ("\n".join(f"{k}={v}" for k, v in row[kind].items()) or "-"
                             for kind in ("deferred", "skipped"))
        due = f"{row['due']:,}" if row["evaluated"] else "-"  # not evaluated here: another tick was evaluating it
        result.add_row(row["campaign"], due, f"{row['sent']:,}", f"{row['failed']:,}",
                       f"{row['retrying']:,}", deferred, skipped)
    print_table(result)
    for row in report.rows():
        if row["note"]:
            click.echo(f"note: {row['campaign']}: {row['note']}", err=True)
    print_warnings(report.warnings)


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


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
        print_warnings(report.warnings)
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
    """Show exactly what a tick at an instant would send, as a gallery of pages; changes nothing."""
    from ..gallery import write_gallery

    now = parse_instant(at)
    app = env.app
    campaigns = app.campaigns(now, list(campaign_ids) or None)
    items = app.preview(now, campaigns, customer)
    with progress_counter("Rendering the preview") as progress:
        entries = write_gallery(items, out, now, progress=progress)
    print_warnings(app.coupon_warnings(now, campaigns))
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
        return
    print_preview_summary(entries)
    click.echo(f"{len(entries)} occurrence(s); open {out / 'index.html'} to browse the rendered emails")


@cli.command()
@pass_env
def run(env: Env) -> None:
    """Run the scheduler daemon: each enabled campaign on its own schedule, and the web service beside it
    (unless LIFECYCLE_SERVE_WITH_DAEMON=false). SIGHUP reloads campaigns; SIGTERM stops both."""
    from ..daemon import Daemon
    from ..web import WebContext, WebServer, create_app

    app = env.app
    daemon = Daemon(app, clock=utcnow)
    web = None
    if env.settings[s.SERVE_WITH_DAEMON]:
        context = WebContext.for_app(app, clock=utcnow, scheduler_alive=daemon.alive)
        web = WebServer.from_settings(create_app(context), env.settings)
    daemon.run_forever(web)


@cli.command("send-test")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Where to send the test email.")
@click.option("--campaign", "campaign_id", required=True, metavar="ID")
@click.option("--customer", metavar="EMAIL", help="Render for this customer (default: sample data).")
@click.option("--variant", metavar="NAME", help="This variant of the message (default: the customer's own; "
              "with sample data, the first).")
@click.option("--step", type=click.IntRange(min=1), metavar="N", help="This step of a journey (default: the first).")
@pass_env
def send_test(env: Env, to: str, campaign_id: str, customer: str | None, variant: str | None,
              step: int | None) -> None:
    """Send one campaign's email to ADDRESS through the configured provider; not recorded in the ledger."""
    now = utcnow()
    app = env.app
    campaign = app.campaigns(now, [campaign_id])[0]
    with app.provider() as provider:
        result, subject = app.send_test(now, campaign, to, provider, customer, variant, step)
    if result.outcome is not Outcome.ACCEPTED:
        raise LifecycleError(f"the provider did not accept the test email: {result.error}",
                             "check the provider settings in .env")
    click.echo(f"Sent {subject!r} to {to} via {provider.name} ({result.provider_message_id})")


@cli.command()
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(min=0),
              help="How many synthetic customers.")
@click.option("--seed", default=7, show_default=True)
@AT
@pass_env
def demo(env: Env, customers: int, seed: int, at: str | None) -> None:
    """Create a synthetic demo shop, run one tick with the configured provider and summarise it."""
    from ..demo.run import run_demo

    run_demo(env.app, now=parse_instant(at), customers=customers, seed=seed, echo=click.echo,
             print_report=print_report, progress=progress_counter)


@cli.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("schema"),
              show_default=True, help="Folder to write the schema files into.")
def schema(out: Path) -> None:
    """Write the JSON Schema of campaign files, for editor completion and checks while typing.

    Campaign files opt in with a first line such as
    `# yaml-language-server: $schema=../schema/campaign.schema.json`.
    """
    from ..schema import write_schemas

    for path in write_schemas(out):
        click.echo(f"Wrote {path}")
