"""Writing a preview to a folder: one HTML file per email and an index.html to browse them."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .app import PreviewItem


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def write_preview(items: Iterable[PreviewItem], out: Path, now: dt.datetime) -> list[dict[str, Any]]:
    """Render each item to out/<campaign>/<key>.html; returns one summary dict per item."""
    out.mkdir(parents=True, exist_ok=True)
    summary: list[dict[str, Any]] = []
    rows = []
    for item in items:
        occ = item.occurrence
        entry: dict[str, Any] = {
            "campaign": occ.campaign_id, "email": occ.email, "occurrence": occ.occurrence_key,
            "due_at": occ.due_at.isoformat() + "Z", "reason": occ.reason,
            "skip_reason": occ.skip_reason.value if occ.skip_reason else None, "error": item.error,
            "subject": item.email.subject if item.email else None, "file": None,
        }
        if item.email is not None:
            path = Path(_slug(occ.campaign_id)) / f"{_slug(occ.occurrence_key)}.html"
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_text(item.email.html, encoding="utf-8")
            entry["file"] = str(path)
        summary.append(entry)
        link = (f'<a href="{html.escape(entry["file"])}">{html.escape(entry["subject"])}</a>'
                if entry["file"] else html.escape(entry["skip_reason"] or entry["error"] or ""))
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in (
            html.escape(entry["campaign"]), html.escape(entry["email"]), html.escape(entry["occurrence"]),
            html.escape(entry["due_at"]), html.escape(entry["reason"]), link)) + "</tr>")
    page = f"""<!doctype html><meta charset="utf-8"><title>Preview at {now:%Y-%m-%d %H:%M} UTC</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}th{{background:#f4f4f4}}</style>
<h1>What a tick at {now:%Y-%m-%d %H:%M} UTC would send</h1><p>{len(summary)} occurrence(s)</p>
<table><tr><th>Campaign</th><th>Recipient</th><th>Occurrence</th><th>Due (UTC)</th><th>Why</th><th>Email</th></tr>
{"".join(rows)}</table>
"""
    (out / "index.html").write_text(page, encoding="utf-8")
    return summary
