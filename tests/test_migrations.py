"""Schema migrations: a store of release 0.1.0 upgrades in place with its data, and models match migrations."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from setuptools import find_packages
from shopkit import ROOT
from sqlalchemy import Engine, MetaData, Table, insert, select, text
from sqlmodel import SQLModel

from runner import migrations
from runner.errors import StoreError
from runner.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
T0 = dt.datetime(2026, 11, 20, 10, 0)

# One or more rows in every table of release 0.1.0, with every column given a value.
RELEASE_0_1_ROWS: dict[str, list[dict[str, Any]]] = {
    "customer": [
        {"id": 1, "external_id": "c-1", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
         "birthday": dt.date(1990, 12, 10), "birthday_md": "12-10", "time_zone": "Europe/London",
         "accepts_marketing": True, "consent_at": T0, "created_at": T0, "order_count": 1, "total_spent_cents": 2400,
         "first_order_at": T0, "last_order_at": T0},
        {"id": 2, "external_id": None, "email": "bob@example.com", "first_name": "", "last_name": "",
         "birthday": None, "birthday_md": None, "time_zone": None, "accepts_marketing": False, "consent_at": None,
         "created_at": T0, "order_count": 0, "total_spent_cents": 0, "first_order_at": None, "last_order_at": None},
    ],
    "customer_tag": [{"customer_id": 1, "tag": "vip"}],
    "product": [{"id": 1, "sku": "MUG", "name": "Mug", "url": "https://shop.example/mug",
                 "image_url": "https://shop.example/mug.jpg", "price_cents": 2400, "updated_at": T0}],
    "orders": [{"id": 1, "external_id": "o-1", "name": "#1001", "customer_id": 1, "placed_at": T0,
                "delivered_at": T0 + dt.timedelta(days=2), "cancelled_at": None, "subtotal_cents": 2400,
                "total_cents": 2900, "currency": "EUR", "discount_code": "WELCOME"}],
    "order_line": [{"id": 1, "order_id": 1, "customer_id": 1, "placed_at": T0, "sku": "MUG", "name": "Mug",
                    "quantity": 2, "unit_price_cents": 1200}],
    "send": [
        {"id": 1, "campaign_id": "thank-you", "occurrence_key": "order:1", "customer_id": 1, "order_id": 1,
         "order_line_id": None, "due_at": T0, "reason": "placed #1001", "status": "sent", "skip_reason": None,
         "attempts": 1, "next_attempt_at": T0, "lease_until": None, "claim_token": None, "provider": "postmark",
         "provider_message_id": "pm-1", "last_error": None, "created_at": T0, "updated_at": T0, "sent_at": T0},
        {"id": 2, "campaign_id": "replenishment", "occurrence_key": "line:1", "customer_id": 1, "order_id": 1,
         "order_line_id": 1, "due_at": T0, "reason": "runs out", "status": "sending", "skip_reason": None,
         "attempts": 2, "next_attempt_at": T0, "lease_until": T0 + dt.timedelta(minutes=10),
         "claim_token": "abc", "provider": None, "provider_message_id": None, "last_error": "HTTP 503",
         "created_at": T0, "updated_at": T0, "sent_at": None},
    ],
    "suppression": [{"id": 1, "email": "bob@example.com", "reason": "unsubscribed", "created_at": T0,
                     "detail": "one-click"}],
    "campaign_state": [{"campaign_id": "thank-you", "last_evaluated_at": T0}],
    "product_affinity": [{"sku": "MUG", "related_sku": "COFFEE", "orders": 3}],
    "meta": [{"key": "schema_version", "value": "1"}, {"key": "signing_key", "value": "kept-secret"},
             {"key": "affinity_refreshed_at", "value": T0.isoformat()}],
}


def release_0_1_store(url: str) -> Store:
    """A store exactly as release 0.1.0's `lifecycle init` left it, with rows in every table."""
    store = Store(url)
    ddl = (FIXTURES / f"schema_0_1_{store.engine.dialect.name}.sql").read_text()
    statements = [s.strip() for s in re.sub(r"^--.*$", "", ddl, flags=re.M).split(";") if s.strip()]
    tables = set(re.findall(r"CREATE TABLE (\w+)", ddl))
    assert tables == set(RELEASE_0_1_ROWS), "every table of the release gets rows"
    with store.engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
        reflected = MetaData()
        for name in ["customer", "product", "orders", "order_line", "customer_tag", "send", "suppression",
                     "campaign_state", "product_affinity", "meta"]:
            connection.execute(insert(Table(name, reflected, autoload_with=connection)), RELEASE_0_1_ROWS[name])
    return store


def rows_now(engine: Engine, name: str, columns: list[str]) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        table = Table(name, MetaData(), autoload_with=connection)
        return [dict(row) for row in connection.execute(select(*(table.c[c] for c in columns))).mappings()]


def model_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_a_store_of_release_0_1_is_upgraded_in_place_with_every_row_intact(database_url: str):
    store = release_0_1_store(database_url)
    try:
        with pytest.raises(StoreError) as refused:
            store.check()
        assert "the schema of release 0.1.0" in str(refused.value)
        assert refused.value.hint == "run `lifecycle init` to upgrade it"

        assert store.init().startswith(f"Upgraded {store.display_url} from the schema of release 0.1.0")
        store.check()
        for name, rows in RELEASE_0_1_ROWS.items():
            if name == "meta":  # the pre-migration mark moves on, so that release 0.1.0 refuses the store
                rows = [r | {"value": "2"} if r["key"] == "schema_version" else r for r in rows]
            expected = sorted(rows, key=lambda r: [str(v) for v in r.values()])
            found = sorted(rows_now(store.engine, name, list(rows[0])), key=lambda r: [str(v) for v in r.values()])
            assert found == expected, name
        assert store.signing_key("") == b"kept-secret"
        # 0002: a campaign evaluated before was first seen no later than that evaluation
        assert rows_now(store.engine, "campaign_state", ["first_seen_at", "evaluation_lease_until"]) == [
            {"first_seen_at": T0, "evaluation_lease_until": None}]
        # 0003: every customer's locale starts unknown, which reads as the shop's
        assert rows_now(store.engine, "customer", ["locale"]) == [{"locale": None}, {"locale": None}]
        # 0007: sends planned before variants existed belong to no variant
        assert rows_now(store.engine, "send", ["variant"]) == [{"variant": None}, {"variant": None}]
        # 0013: sends planned before journeys existed are no journey's step
        assert rows_now(store.engine, "send", ["step"]) == [{"step": None}, {"step": None}]
        assert model_differences(store.engine) == []
        assert store.init() == f"Already up to date: {store.display_url} (schema revision {migrations.head()})"
    finally:
        store.close()


def test_a_new_store_matches_the_models(database_url: str):
    """A model change without its revision fails here (and in the upgrade test above)."""
    store = Store(database_url)
    try:
        assert store.init() == f"Created {store.display_url} (schema revision {migrations.head()})"
        store.check()
        assert model_differences(store.engine) == []
    finally:
        store.close()


def test_a_store_from_a_newer_program_is_refused_and_left_alone(database_url: str):
    store = Store(database_url)
    try:
        store.init()
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        for attempt in (store.check, store.init):
            with pytest.raises(StoreError) as refused:
                attempt()
            assert "newer than this program knows" in str(refused.value)
            assert "\n" not in str(refused.value)
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    finally:
        store.close()


def test_a_store_behind_head_is_refused_until_init_upgrades_it(database_url: str):
    store = Store(database_url)
    try:
        with store.engine.begin() as connection:
            command.upgrade(migrations.config(connection), migrations.BASELINE)
        with pytest.raises(StoreError) as refused:
            store.check()
        assert str(refused.value) == (f"the store at {store.display_url} has schema revision 0001, this program "
                                      f"needs revision {migrations.head()}")
        assert refused.value.hint == "run `lifecycle init` to upgrade it"
        assert store.init() == (f"Upgraded {store.display_url} from schema revision 0001 to schema revision "
                                f"{migrations.head()}")
        store.check()
    finally:
        store.close()


def test_a_store_that_was_never_initialised_is_refused(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match="no lifecycle store at") as refused:
        store.check()
    assert refused.value.hint == "run `lifecycle init` first"


def test_the_revisions_form_one_line_with_one_head():
    scripts = migrations.scripts()
    assert scripts.get_heads() == [migrations.head()]
    chain = [script.revision for script in scripts.walk_revisions()]  # newest first
    assert chain[-1] == migrations.BASELINE
    assert chain == [f"{n:04d}" for n in range(len(chain), 0, -1)], "revisions are numbered 0001, 0002, ..."
    assert len(chain) == len(list((migrations.HERE / "versions").glob("[0-9]*.py")))
    for path in (migrations.HERE / "versions").glob("[0-9]*.py"):
        assert path.name.startswith(re.search(r'^revision = "(\d+)"', path.read_text(), re.M).group(1) + "_")


def test_the_migrations_ship_in_the_installed_package():
    assert "runner.migrations.versions" in find_packages(ROOT, include=["runner*"])
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["runner.migrations"] == ["script.py.mako"]
    assert any(d.startswith("alembic") for d in pyproject["project"]["dependencies"])


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--autogenerate"], []])
def test_drafting_a_revision_takes_no_option_for_its_message(argv: list[str], capsys: pytest.CaptureFixture[str]):
    from runner.migrations.__main__ import main

    versions = sorted((Path(migrations.__file__).parent / "versions").iterdir())
    assert main(argv) == (0 if argv in (["--help"], ["-h"]) else 2)
    assert "usage: python -m runner.migrations" in capsys.readouterr().err
    assert sorted((Path(migrations.__file__).parent / "versions").iterdir()) == versions
