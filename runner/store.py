"""Opening, creating and checking the store (SQLite by default, any SQLAlchemy URL otherwise)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from . import models
from .errors import StoreError
from .models import Meta


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """The store's form of an instant: naive UTC. Aware values are converted; naive ones are taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    # WAL lets `preview` and `serve` read while a tick writes; busy_timeout makes a second
    # writer (cron tick beside the daemon) wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    """A handle on one database: `Store(url).init()` creates it, `Store(url).check()` verifies it."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        kwargs: dict = {}
        if url.startswith("sqlite"):
            if read_only:
                path = url.split("///", 1)[1]
                url = f"sqlite:///file:{path}?mode=ro&uri=true"
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite") and not read_only:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def init(self) -> bool:
        """Create the schema if absent. Returns True when it was created now."""
        created = not inspect(self.engine).has_table("meta")
        SQLModel.metadata.create_all(self.engine)
        with self.session() as session:
            if session.get(Meta, "schema_version") is None:
                session.add(Meta(key="schema_version", value=str(models.SCHEMA_VERSION)))
            session.commit()
        self.signing_key("")  # created now, so that reading commands (preview) never write
        return created

    def check(self) -> None:
        """Refuse a store that was never initialised or has another schema version."""
        try:
            with self.session() as session:
                row = session.get(Meta, "schema_version")
        except OperationalError:
            row = None
        if row is None:
            raise StoreError(f"no lifecycle store at {self.display_url}", "run `lifecycle init` first")
        if int(row.value) != models.SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {row.value}, this program expects {models.SCHEMA_VERSION}",
                "run `lifecycle init` with the matching version; see docs/schema.md on migrations",
            )

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def signing_key(self, configured: str) -> bytes:
        """The configured key, else one generated once and kept in the store."""
        if configured:
            return configured.encode()
        with self.session() as session:
            row = session.exec(select(Meta).where(Meta.key == "signing_key")).scalar_one_or_none()
            if row is None:
                row = Meta(key="signing_key", value=secrets.token_urlsafe(32))
                session.add(row)
                session.commit()
            return row.value.encode()

    def close(self) -> None:
        self.engine.dispose()
