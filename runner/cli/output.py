"""How commands print: aligned tables that fit 80 columns, and progress on a terminal only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


def table(title: str | None, columns: list[str], **options: Any) -> Table:
    """A table that fits 80 columns: no outer edge, a rule under the header, numbers right-aligned
    (every column but the first)."""
    # two spaces between columns (the box's blank separator and one of padding), not three: seven
    # columns of figures and reasons then fit 80 columns without folding a reason
    result = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), title=title,
                   **options)
    for index, name in enumerate(columns):
        result.add_column(name, justify="left" if index == 0 else "right", no_wrap=True)
    return result


def print_table(result: Table) -> None:
    Console().print(result)


@contextmanager
def progress_counter(label: str, total: int | None = None,
                     unit: str | None = "done") -> Iterator[Callable[[int], None]]:
    """A live line on stderr when it is a terminal, silent in a pipe or a log: "label: N done", or with a
    `total` a bar and "N/total unit"; with `unit` None, the label and the time elapsed only (for a step
    that reports no count)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done: None
        return
    if total is not None:
        columns: list[Any] = [TextColumn("{task.description}"), BarColumn(),
                              TextColumn(f"{{task.completed:,}}/{{task.total:,}} {unit or ''}".rstrip())]
    elif unit is None:
        columns = [TextColumn("{task.description}")]
    else:
        columns = [TextColumn(f"{{task.description}}: {{task.completed:,}} {unit}")]
    with Progress(SpinnerColumn(), *columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


def print_preview_summary(entries: list[dict[str, Any]]) -> None:
    """Per campaign, and per variant of a campaign with variants or step of a journey: how many occurrences
    would be sent, skipped (by reason) or fail to render."""
    if not entries:
        return
    by_campaign: dict[str, Counter[str]] = {}
    by_part: dict[tuple[str, str, Any], Counter[str]] = {}
    for entry in entries:
        by_campaign.setdefault(entry["campaign"], Counter())[entry["status"]] += 1
        for part in ("variant", "step"):
            if entry.get(part):
                by_part.setdefault((entry["campaign"], part, entry[part]), Counter())[entry["status"]] += 1
    statuses = sorted({s for counts in by_campaign.values() for s in counts}, key=lambda s: (s != "send", s))
    result = table("What a tick would do", ["campaign", *statuses])
    for campaign_id, counts in sorted(by_campaign.items()):
        rows = [(campaign_id, counts)] + [(f"  {part} {name}", counts) for (owner, part, name), counts
                                          in sorted(by_part.items()) if owner == campaign_id]
        for label, row in rows:
            result.add_row(label, *(f"{row[s]:,}" if row[s] else "" for s in statuses))
    print_table(result)
