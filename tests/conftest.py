"""Fixtures: real SQLite stores in tmp_path and an App wired to them; the bench's Postmark sink on the import path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from shopkit import ROOT, ShopBuilder

from runner.app import App
from runner.settings import Settings
from runner.store import Store

POSTGRES_URL = os.environ.get("LIFECYCLE_TEST_POSTGRES_URL")
BENCH_DIR = ROOT / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # bench/postmark_sink.py is shared with bench/dispatch.py and bench/workers.py


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite, and on PostgreSQL when LIFECYCLE_TEST_POSTGRES_URL names one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set LIFECYCLE_TEST_POSTGRES_URL (.ci/run does when it can)")
    store = Store(POSTGRES_URL)
    store.drop()
    store.close()
    return POSTGRES_URL


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings({
        "LIFECYCLE_DATABASE_URL": database_url,
        "LIFECYCLE_CAMPAIGNS_DIR": str(tmp_path / "campaigns"),
        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"),
        "LIFECYCLE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LIFECYCLE_SECRET_KEY": "test-signing-key",
    })


@pytest.fixture
def app(settings: Settings) -> App:
    application = App(settings)
    application.store.init()
    yield application
    application.store.close()


@pytest.fixture
def shop(app: App) -> ShopBuilder:
    return ShopBuilder(app.store)


@pytest.fixture
def campaigns_dir(settings: Settings) -> Path:
    folder = Path(settings.environ["LIFECYCLE_CAMPAIGNS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The file of the `store` fixture."""
    return tmp_path / "lifecycle.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """One initialised SQLite store, at the default path (`lifecycle.db`) in tmp_path, so a `lifecycle`
    command run there uses it too."""
    store = Store(f"sqlite:///{db_path}")
    store.init()
    yield store
    store.close()
