"""Schema migrations (Alembic), driven from code: no alembic.ini, the store's own engine.

`upgrade` brings a store to the newest revision in one transaction; `state` says where a store
stands. A store made before migrations existed (release 0.1.0: tables from create_all,
`meta.schema_version` = 1, no alembic_version table) is recognised and stamped at the baseline
revision first. Writing a revision: docs/schema.md, "Evolving the schema".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from ..errors import StoreError

HERE = Path(__file__).parent
BASELINE = "0001"
LEGACY_SCHEMA_VERSION = "1"  # what release 0.1.0 wrote to meta.schema_version


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package, optionally bound to a connection for env.py."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this program knows."""
    found = scripts().get_current_head()
    assert found is not None, "the migrations package holds no revision"
    return found


@cache
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in scripts().walk_revisions())


@dataclass(frozen=True)
class SchemaState:
    """Where a store stands: its revision (None: no lifecycle store at all) and how it compares to head."""

    revision: str | None
    legacy: bool = False  # made before migrations; stamped at the baseline on upgrade

    @property
    def exists(self) -> bool:
        return self.revision is not None

    @property
    def current(self) -> bool:
        return not self.legacy and self.revision == head()

    def describe(self) -> str:
        if self.legacy:
            return "the schema of release 0.1.0 (before migrations)"
        return f"schema revision {self.revision}"

    @property
    def ahead(self) -> bool:
        """Written by a newer program: a revision this one does not know."""
        return self.revision is not None and self.revision not in known_revisions()


def _legacy_version(connection: Connection) -> str | None:
    if not inspect(connection).has_table("meta"):
        return None
    return connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()


def state(connection: Connection) -> SchemaState:
    """The store's schema revision, read without changing anything."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is not None:
        return SchemaState(revision)
    legacy = _legacy_version(connection)
    if legacy is None:
        return SchemaState(None)
    if legacy != LEGACY_SCHEMA_VERSION:
        raise StoreError(f"the store has schema version {legacy}, which no release of this program wrote",
                         "point LIFECYCLE_DATABASE_URL at a lifecycle store")
    return SchemaState(BASELINE, legacy=True)


def upgrade(engine: Engine) -> tuple[SchemaState, str]:
    """Create the store, or bring it to head in place, in one transaction.

    Returns the state found before and the revision now. Refuses a store that a newer program
    has upgraded: applying nothing is safe, guessing is not.
    """
    with engine.begin() as connection:
        before = state(connection)
        if before.ahead:
            raise StoreError(f"the store is at schema revision {before.revision}, newer than this program "
                             f"knows (its newest is {head()})",
                             "run the newer lifecycle-runner release that upgraded it")
        cfg = config(connection)
        if before.legacy:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
    return before, head()
