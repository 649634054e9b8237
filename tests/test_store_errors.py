"""What a user sees when the database fails: one line with a hint, never the SQL or its parameters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from test_cli import AT, run, workdir  # noqa: F401 - workdir is a fixture used here

from runner.store import Store, describe_database_error


def test_a_database_error_is_described_without_its_statement_or_parameters():
    statement = "INSERT INTO send (campaign_id, occurrence_key, email) VALUES (?, ?, ?)"
    locked = OperationalError(statement, ("thank-you", "order:1", "ada@example.com"),
                              sqlite3.OperationalError("database is locked"))
    assert "INSERT" in str(locked) and "ada@example.com" in str(locked)  # what used to be printed
    described = describe_database_error(locked)
    assert str(described) == "the store is locked: another process kept writing to it for longer than the wait " \
                             "allowed (30 s)"
    assert described.hint
    duplicate = IntegrityError(statement, {"email": "ada@example.com"}, Exception(
        'duplicate key value violates unique constraint "customer_email_key"\n'
        "DETAIL:  Key (email)=(ada@example.com) already exists."))
    assert str(describe_database_error(duplicate)) == ("the store refused an operation: duplicate key value violates "
                                                       'unique constraint "customer_email_key"')


@pytest.fixture
def broken_store(workdir: Path) -> Path:  # noqa: F811 - the fixture imported above
    """A store at the right revision whose ledger table is gone, so a tick fails inside SQL."""
    store = Store(f"sqlite:///{workdir / 'lifecycle.db'}")
    store.init()
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE send"))
    store.close()
    return workdir


def test_a_failing_statement_is_one_line_without_sql_unless_verbose(broken_store: Path, capsys):
    code, _out, err = run(capsys, "tick", "--at", AT)
    assert code == 1
    assert err.splitlines() == ["Error: the store is incomplete: no such table: send",
                                "Hint: run `lifecycle init` to create or upgrade it"]
    code, _out, err = run(capsys, "--verbose", "tick", "--at", AT)
    assert code == 1
    assert "[SQL: " in err and "Traceback" in err  # --verbose shows everything
    assert err.splitlines()[-2:] == ["Error: the store is incomplete: no such table: send",
                                     "Hint: run `lifecycle init` to create or upgrade it"]
