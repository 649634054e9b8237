"""The one exception tree: every error a user can meet derives from LifecycleError.

    LifecycleError                  base; str(err) is the one-line message, err.hint the fix
    ├── ConfigError                 a setting is missing or malformed
    ├── StoreError                  the database is missing, too old or unreachable
    ├── CampaignError               a campaign file or template is invalid (carries problems)
    ├── DataImportError             an import file has bad rows (carries problems); nothing was written
    ├── ProviderError               the mail provider cannot be used at all (bad credentials, ...)
    ├── WebError                    the web service cannot listen or stopped unexpectedly
    ├── WebhookError (webhooks/)    a provider webhook request was refused; `status` is its HTTP answer
    └── RenderError (rendering/)    one message could not be rendered (file, line and hint)

Per-message delivery failures are not exceptions: providers return them as results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def one_line(exc: BaseException) -> str:
    """An exception as one log-safe line: its type and the first line of its message. (SQLAlchemy puts
    the statement and its parameters on the lines after the first, so they never show.)"""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class LifecycleError(Exception):
    """Base of every error shown to a user: a message and a hint saying what to do next."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def with_hint(self) -> str:
        """The message and its hint on one line, for a ledger row or a report."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(LifecycleError):
    """A setting is missing or malformed."""


class StoreError(LifecycleError):
    """The store cannot be used as it is."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a campaign or template file, located by file and line."""

    path: str
    line: int | None
    message: str
    hint: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class CampaignError(LifecycleError):
    """One or more campaign files or templates are invalid; `problems` lists each one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        if len(problems) == 1:  # its own hint says what to do; one hint line, not two
            only = problems[0]
            super().__init__(f"{only.where}: {only.message}",
                             only.hint or "fix it, then run `lifecycle validate` to check the whole set")
            return
        first = str(problems[0]) if problems else "invalid campaign set"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(first + more, "run `lifecycle validate` to list every problem")


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong in an import file, located by row and column where it has them."""

    path: str
    row: int | None
    column: str | None
    reason: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.row is not None:
            where += f": row {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


class DataImportError(LifecycleError):
    """An import file has bad rows; the store was left untouched.

    `problems` lists them in file order, the first being the one given to the constructor (up to
    a bound; `unlisted` counts the rest). The message is the first problem; path, row, column and
    reason are the first problem's.
    """

    def __init__(self, path: str, row: int | None, column: str | None, reason: str, hint: str | None = None, *,
                 more: Sequence[ImportProblem] = (), unlisted: int = 0) -> None:
        first = ImportProblem(path, row, column, reason, hint)
        self.problems, self.unlisted = [first, *more], unlisted
        self.path, self.row, self.column, self.reason = path, row, column, reason
        others = len(more) + unlisted
        super().__init__(f"{first}; nothing was imported" + (f" (and {others} more problem(s))" if others else ""),
                         hint)

    @classmethod
    def listing(cls, problems: Sequence[ImportProblem], unlisted: int = 0) -> DataImportError:
        """One error for several bad rows, in file order."""
        first, *more = problems
        return cls(first.path, first.row, first.column, first.reason, first.hint, more=more, unlisted=unlisted)


class ProviderError(LifecycleError):
    """The mail provider cannot be used at all (configuration, credentials)."""


class WebError(LifecycleError):
    """The web service cannot listen on its address, or its server stopped unexpectedly."""
