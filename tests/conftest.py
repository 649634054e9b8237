"""Fixtures: real SQLite stores in tmp_path and an App wired to them."""

from __future__ import annotations

from pathlib import Path

import pytest
from shopkit import ROOT, ShopBuilder

from runner.app import App
from runner.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings({
        "LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
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
