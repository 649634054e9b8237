"""`simulate`: what the campaigns would have sent over a past period, per day, without sending anything."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from ..durations import format_duration, parse_duration
from ..simulation.chart import write_report
from ..simulation.grid import TickGrid
from ..simulation.summary import OUTCOMES, SimulationSummary
from ..store import utc_naive
from .base import Env, cli, parse_instant, pass_env
from .output import print_table, progress_counter, table

MAX_CAMPAIGN_COLUMNS = 5  # beyond this the table per bucket shows the total only, to fit 80 columns


def _bound(value: str, *, end: bool) -> dt.datetime:
    """A date or date-time; a bare date as --to means the end of that day."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return utc_naive(parse_instant(value))
    start = dt.datetime.combine(day, dt.time())
    return start + dt.timedelta(days=1, seconds=-1) if end else start


@cli.command()
@click.option("--from", "start", required=True, metavar="DATE", help="First tick (a date means 00:00 UTC).")
@click.option("--to", "end", required=True, metavar="DATE", help="Last day or instant (a date includes the whole day).")
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID",
              help="Only this campaign (repeatable); a disabled campaign may be named too.")
@click.option("--step", default="1h", show_default=True, metavar="DURATION", help="Time between ticks.")
@click.option("--assume-consent", is_flag=True,
              help="Count customers without marketing consent as if they had it (to size a campaign on a store "
                   "imported without consent); suppressed addresses still count as suppressed.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("simulation"),
              show_default=True, help="Folder for index.html, daily.csv and the chart.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="What to print: tables, the summary as JSON, or the daily CSV.")
@pass_env
def simulate(env: Env, start: str, end: str, campaign_ids: tuple[str, ...], step: str, assume_consent: bool,
             out: Path, fmt: str) -> None:
    """Replay ticks over a past period against the store as it was at each tick: how many emails each
    campaign would have sent per day, and how many it would have skipped. Sends nothing, writes nothing
    to the store."""
    try:
        every = parse_duration(step)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--step") from None
    first, last = _bound(start, end=False), _bound(end, end=True)
    if last <= first:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    grid = TickGrid(first, last, every)
    app = env.app
    campaigns = app.campaigns(first, list(campaign_ids) or None)
    with progress_counter("Simulating") as progress:
        occurrences = app.simulate(grid, campaigns, assume_consent=assume_consent)
        summary = SimulationSummary.collect(grid, [c.id for c in campaigns], occurrences, progress=progress,
                                            assumed_consent=assume_consent)
    written = write_report(summary, out)
    for campaign in campaigns:
        if campaign.spec.steps:  # on stderr: the JSON or CSV on stdout stays whole
            click.echo(f"note: {campaign.id} is a journey: only its first step is simulated (each later step "
                       "follows the ledger's record of the step before it, which a simulation does not write)",
                       err=True)
    if fmt == "json":
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    if fmt == "csv":
        summary.write_csv(sys.stdout)
        return
    _print_tables(summary)
    if assume_consent:
        click.echo("Customers without marketing consent were counted as if they had given it.")
    click.echo(f"Chart in {written[0]}, day by day in {out / 'daily.csv'}.")
    click.echo("Nothing was sent and the store is unchanged.")


def _print_tables(summary: SimulationSummary) -> None:
    grid = summary.grid
    per_campaign = table(f"Simulated {grid.start:%Y-%m-%d} to {grid.last:%Y-%m-%d}, "
                         f"a tick every {format_duration(grid.step)}",
                         ["campaign", "sent", "per day", "peak day", *(o.replace("_", " ") for o in OUTCOMES[1:])])
    for item in summary.as_dict()["campaigns"]:
        per_campaign.add_row(item["campaign"], f"{item['sent']:,}", f"{item['sent_per_day']:,.1f}",
                             f"{item['peak_sent']:,}", *(f"{item['skipped'][o]:,}" for o in OUTCOMES[1:]))
    print_table(per_campaign)
    ids = summary.campaign_ids
    shown = ids if len(ids) <= MAX_CAMPAIGN_COLUMNS else []
    unit = summary.bucket_unit()
    per_bucket = table(f"Emails per {unit}", [unit, *shown, *(["total"] if len(ids) != 1 else [])])
    for label, counts in summary.buckets():
        cells = [f"{counts[c]:,}" for c in shown] + ([f"{sum(counts.values()):,}"] if len(ids) != 1 else [])
        per_bucket.add_row(label, *cells)
    print_table(per_bucket)
