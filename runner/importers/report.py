"""What one import did: counts of rows read, created and updated, and warnings (bounded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MAX_WARNINGS = 100

Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What one import did. Created/updated count only rows that were new or actually changed."""

    path: str
    rows_read: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    orders_skipped: int = 0
    customers_skipped: int = 0
    lines: int = 0  # order lines written (new or rewritten)
    products_created: int = 0
    products_updated: int = 0
    checkouts_created: int = 0
    checkouts_updated: int = 0
    checkouts_skipped: int = 0
    orders_not_found: int = 0  # delivery times for orders the store does not have
    warnings: list[str] = field(default_factory=list)
    warnings_not_shown: int = 0

    def warn(self, message: str, *, first: bool = False) -> None:
        """Add a warning; `first` puts it ahead of the others (the CLI shows the first few)."""
        if first:
            self.warnings.insert(0, message)
            if len(self.warnings) > MAX_WARNINGS:
                self.warnings.pop()
                self.warnings_not_shown += 1
        elif len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.warnings_not_shown += 1

    def summary(self) -> str:
        """One line for the CLI: what was read and what changed."""
        parts = [f"{self.rows_read} rows read"]
        for label, created, updated in (("customers", self.customers_created, self.customers_updated),
                                        ("orders", self.orders_created, self.orders_updated),
                                        ("products", self.products_created, self.products_updated),
                                        ("checkouts", self.checkouts_created, self.checkouts_updated)):
            if created or updated:
                parts.append(f"{label}: {created} created, {updated} updated")
        if self.lines:
            parts.append(f"{self.lines} order lines written")
        if self.customers_skipped:
            parts.append(f"{self.customers_skipped} customers without email skipped")
        if self.orders_skipped:
            parts.append(f"{self.orders_skipped} orders without email skipped")
        if self.checkouts_skipped:
            parts.append(f"{self.checkouts_skipped} checkouts without email skipped")
        if self.orders_not_found:
            parts.append(f"{self.orders_not_found} rows name orders the store does not have")
        if len(parts) == 1:
            parts.append("nothing changed")
        warned = len(self.warnings) + self.warnings_not_shown
        if warned:
            parts.append(f"{warned} warning(s)")
        return f"{self.path}: " + "; ".join(parts)


def report_progress(progress: Progress | None, rows: int) -> None:
    """Tell the caller how many rows are done, if it asked."""
    if progress is not None:
        progress(rows)
