"""Writing a simulation down: the daily CSV, a chart of daily volume per campaign as SVG (drawn here,
no dependency) and PNG (when matplotlib is installed), and a self-contained HTML page with both."""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..durations import format_duration
from .summary import OUTCOMES, SimulationSummary

PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a3069", "#57606a")
FILES = ("index.html", "daily.csv", "daily.svg", "daily.png")

_env = Environment(loader=PackageLoader("runner.simulation"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _nice_step(top: int, ticks: int = 5) -> int:
    """A step of 1, 2 or 5 times a power of ten that divides 0..top into at most `ticks` parts."""
    raw = max(top / ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _date_labels(days: list[dt.date]) -> list[tuple[int, str]]:
    """(index, label) for the x axis: a few days apart for a short period, month starts for a long one."""
    if len(days) <= 62:
        every = max(1, math.ceil(len(days) / 8))
        return [(i, f"{day:%b %d}") for i, day in enumerate(days) if i % every == 0]
    starts = [(i, day) for i, day in enumerate(days) if day.day == 1 or i == 0]
    every = max(1, math.ceil(len(starts) / 12))
    return [(i, f"{day:%b %Y}" if day.month == 1 or n == 0 else f"{day:%b}")
            for n, (i, day) in enumerate(starts) if n % every == 0]


def daily_chart_svg(summary: SimulationSummary, *, width: int = 960, height: int = 360) -> str:
    """A line per campaign: emails sent per day (UTC), with axes, grid and a legend."""
    days = summary.days()
    series = {cid: [summary.day_counts(cid, day)["sent"] for day in days] for cid in summary.campaign_ids}
    highest = max((max(values) for values in series.values() if values), default=0)
    step = _nice_step(highest)
    top = max(step, math.ceil(highest / step) * step)
    left, right, above, below = 56, 16, 44, 40
    plot_w, plot_h = width - left - right, height - above - below

    def x(i: int) -> float:
        return left + (i / (len(days) - 1) * plot_w if len(days) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return above + plot_h - value / top * plot_h

    title = (f"Emails per day, {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d} (UTC), "
             f"a tick every {format_duration(summary.grid.step)}")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(title)}" font-family="Helvetica, Arial, sans-serif" '
             f'font-size="12">', f"<title>{escape(title)}</title>",
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for value in range(0, top + 1, step):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#57606a">{value:,}</text>')
    for i, label in _date_labels(days):
        parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{above + plot_h}" y2="{above + plot_h + 4}" '
                     f'stroke="#57606a"/>')
        parts.append(f'<text x="{x(i):.1f}" y="{above + plot_h + 18}" text-anchor="middle" '
                     f'fill="#57606a">{escape(label)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{above + plot_h}" y2="{above + plot_h}" '
                 f'stroke="#57606a"/>')
    legend_x = left
    for n, (campaign_id, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        if len(values) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" stroke-linejoin="round" '
                         f'points="{points}"><title>{escape(campaign_id)}</title></polyline>')
        else:
            parts.append(f'<circle cx="{x(0):.1f}" cy="{y(values[0]):.1f}" r="3" fill="{color}"/>')
        label = f"{campaign_id} ({sum(values):,})"
        parts.append(f'<rect x="{legend_x}" y="14" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="24" fill="#1f2328">{escape(label)}</text>')
        legend_x += 16 + 7 * len(label) + 18
    parts.append(f'<text x="{left}" y="{height - 6}" fill="#57606a">{escape(title)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_png(summary: SimulationSummary, path: Path) -> bool:
    """The same chart as a PNG through matplotlib, when it is installed; False (nothing written) otherwise."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    days = summary.days()
    figure = Figure(figsize=(10, 3.75), dpi=110)
    axes = figure.subplots()
    for n, campaign_id in enumerate(summary.campaign_ids):
        values = [summary.day_counts(campaign_id, day)["sent"] for day in days]
        axes.plot(days, values, label=f"{campaign_id} ({sum(values):,})", color=PALETTE[n % len(PALETTE)],
                  linewidth=1.2)
    axes.set_ylabel("emails per day")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)
    return True


def write_report(summary: SimulationSummary, out: Path) -> list[Path]:
    """Write daily.csv, daily.svg, daily.png (with matplotlib) and index.html into `out`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:  # a PNG from an earlier run must not outlive it
        (out / name).unlink(missing_ok=True)
    with (out / "daily.csv").open("w", encoding="utf-8", newline="") as stream:
        summary.write_csv(stream)
    svg = daily_chart_svg(summary)
    (out / "daily.svg").write_text(svg, encoding="utf-8")
    written = [out / "daily.csv", out / "daily.svg"]
    if write_png(summary, out / "daily.png"):
        written.append(out / "daily.png")
    rows = [(item, summary.totals(item["campaign"])) for item in summary.as_dict()["campaigns"]]
    (out / "index.html").write_text(_env.get_template("report.html").render(
        summary=summary, rows=rows, outcomes=OUTCOMES, chart=Markup(svg), buckets=summary.buckets(),
        unit=summary.bucket_unit(), step=format_duration(summary.grid.step), png=(out / "daily.png").exists(),
    ), encoding="utf-8")
    return [out / "index.html", *written]
