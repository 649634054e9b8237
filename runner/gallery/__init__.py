"""The preview gallery: a small static site of what a tick would send, to browse and share.

`write_gallery(items, out, now)` writes `index.html` (a summary per campaign, every occurrence with
filters by campaign and status) and, for each email that would be sent, a page with its subject,
preheader, From/To, reason, the HTML in frames at desktop and phone widths, the plain-text part and
the headers. The files it wrote are listed in `.gallery.json`, so the next preview into the same
folder removes exactly those and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..results import PreviewItem
from ..store import iso_utc

MANIFEST = ".gallery.json"
PHONE_WIDTH, DESKTOP_WIDTH = 375, 700

_env = Environment(loader=PackageLoader("runner.gallery"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def status_of(item: PreviewItem) -> str:
    """"send", "error", the skip reason, or "deferred:<reason>" for mail a policy holds back."""
    occ = item.occurrence
    if item.error:
        return "error"
    if occ.skip_reason is not None:
        return f"deferred:{occ.skip_reason.value}" if occ.deferred_until else occ.skip_reason.value
    return "send"


@dataclass
class CampaignSummary:
    campaign_id: str
    statuses: Counter[str] = field(default_factory=Counter)
    variants: dict[str, Counter[str]] = field(default_factory=dict)  # the same counts per variant, if any
    steps: dict[int, Counter[str]] = field(default_factory=dict)  # and per step of a journey

    def count(self, status: str, variant: str | None, step: int | None) -> None:
        self.statuses[status] += 1
        if variant is not None:
            self.variants.setdefault(variant, Counter())[status] += 1
        if step is not None:
            self.steps.setdefault(step, Counter())[status] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def _remove_previous(out: Path) -> None:
    """Delete the files the last gallery in `out` wrote (and folders left empty), nothing else."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return
    try:
        written = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    root = out.resolve()
    folders = set()
    for name in written if isinstance(written, list) else []:
        path = (out / str(name)).resolve()
        if root in path.parents and path.is_file():
            path.unlink()
            folders.add(path.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder != root and not any(folder.iterdir()):
            folder.rmdir()
    manifest.unlink()


def write_gallery(items: Iterable[PreviewItem], out: Path, now: dt.datetime,
                  progress: Callable[[int], None] = lambda done: None) -> list[dict[str, Any]]:
    """Write the gallery for `items` into `out`; returns one summary dict per occurrence."""
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    written: list[str] = []
    entries: list[dict[str, Any]] = []
    summaries: dict[str, CampaignSummary] = {}
    email_page = _env.get_template("email.html")

    def write(relative: Path, text: str) -> None:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text, encoding="utf-8")
        written.append(relative.as_posix())

    for item in items:
        occ = item.occurrence
        status = status_of(item)
        summaries.setdefault(occ.campaign_id, CampaignSummary(occ.campaign_id)).count(status, occ.variant, occ.step)
        entry: dict[str, Any] = {
            "campaign": occ.campaign_id, "variant": occ.variant, "step": occ.step, "email": occ.email,
            "occurrence": occ.occurrence_key,
            "due_at": iso_utc(occ.due_at), "reason": occ.reason, "status": status,
            "skip_reason": occ.skip_reason.value if occ.skip_reason else None,
            "deferred_until": iso_utc(occ.deferred_until) if occ.deferred_until else None,
            "error": item.error, "subject": item.email.subject if item.email else None, "file": None,
        }
        if item.email is not None:
            base = Path(_slug(occ.campaign_id)) / _slug(occ.occurrence_key)
            page, body = base.with_suffix(".html"), base.with_name(base.name + ".email.html")
            write(body, item.email.html)
            write(page, email_page.render(item=item, email=item.email, entry=entry, body=body.name, now=now,
                                          headers=_headers(item), phone=PHONE_WIDTH, desktop=DESKTOP_WIDTH))
            entry["file"] = page.as_posix()
        entries.append(entry)
        progress(len(entries))
    by_status: dict[str, int] = defaultdict(int)
    for summary in summaries.values():
        for status, count in summary.statuses.items():
            by_status[status] += count
    write(Path("index.html"), _env.get_template("index.html").render(
        now=now, entries=entries, summaries=sorted(summaries.values(), key=lambda s: s.campaign_id),
        statuses=sorted(by_status, key=lambda s: (s != "send", s)), by_status=by_status,
        variants=sorted({name for summary in summaries.values() for name in summary.variants})))
    (out / MANIFEST).write_text(json.dumps(written, indent=0), encoding="utf-8")
    return entries


def _headers(item: PreviewItem) -> list[tuple[str, str]]:
    email = item.email
    assert email is not None
    rows = [("From", email.from_), ("To", item.occurrence.email)]
    if email.reply_to:
        rows.append(("Reply-To", email.reply_to))
    rows.append(("Subject", email.subject))
    return rows + sorted(item.headers.items())
