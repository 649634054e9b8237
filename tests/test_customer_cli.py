"""`lifecycle customer export|forget` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from shopkit import ShopBuilder
from sqlalchemy import select
from test_cli import run

from runner.models import ConsentChange, Customer
from runner.store import Store


@pytest.fixture
def store(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A working directory whose settings name the test database, holding one customer, Ada."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LIFECYCLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", database_url)
    store = Store(database_url)
    store.init()
    ShopBuilder(store).customer("ada@example.com", first_name="Ada")
    yield store
    store.close()


def emails(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.execute(select(Customer.email)).scalars())


def test_export_prints_json_or_writes_a_file(store: Store, tmp_path: Path, capsys):
    code, out, err = run(capsys, "customer", "export", "Ada@Example.com")
    assert code == 0, err
    document = json.loads(out)
    assert document["customer"]["first_name"] == "Ada" and document["orders"] == []
    assert err == ("customer 1: tags 0, consent_history 0, orders 0, checkouts 0, sends 0, events 0, nps_responses 0, "
                   "suppressions 0, suppression_history 0\n")

    code, out, err = run(capsys, "customer", "export", "ada@example.com", "--out", "ada.json")
    assert code == 0 and out == ""
    assert json.loads((tmp_path / "ada.json").read_text())["customer"]["email"] == "ada@example.com"
    assert err.startswith("Wrote ada.json: customer 1")


def test_forget_asks_first_then_erases_once(store: Store, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, err = run(capsys, "customer", "forget", "ada@example.com")
    assert code == 130 and "Erase the personal data of ada@example.com?" in out and "Aborted." in err
    assert emails(store) == ["ada@example.com"]

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = run(capsys, "customer", "forget", "ada@example.com")
    assert code == 0 and "customer 1 forgotten: personal data erased" in out
    assert emails(store) == ["forgotten-1"]
    code, out, _ = run(capsys, "customer", "forget", "ADA@example.com", "--yes")
    assert code == 0 and out.startswith("already forgotten")

    code, out, err = run(capsys, "customer", "export", "ada@example.com")
    assert code == 0 and json.loads(out)["forgotten"] is True
    assert err == ("this address was forgotten (erased on request): the store keeps only a keyed hash of it on "
                   "the suppression list\n")


@pytest.mark.parametrize("command", [("export", "--out=x.json"), ("forget", "--yes")])
def test_what_is_not_an_address_is_refused_in_one_line(store: Store, capsys, command: tuple[str, str]):
    code, out, err = run(capsys, "customer", *command[:1], "ada.example.com", *command[1:])
    assert code == 1 and out == ""
    assert err.splitlines() == ["Error: 'ada.example.com' is not an email address",
                                "Hint: give the customer's address as the shop has it, e.g. ada@example.com"]
    assert emails(store) == ["ada@example.com"] and not Path("x.json").exists()


def test_a_manual_suppression_is_in_the_consent_history(store: Store, capsys):
    assert run(capsys, "suppress", "add", "ada@example.com")[0] == 0
    with store.session() as session:
        (change,) = session.execute(select(ConsentChange)).scalars()
    assert (change.accepted_before, change.accepted_after, change.source) == (True, False, "manual")
