"""Opening, creating and checking the store (SQLite by default, any SQLAlchemy URL otherwise)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine

from . import migrations
from .errors import StoreError
from .models import Meta
from .sql import dialect_insert

BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for another one before giving up


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """The store's form of an instant: naive UTC. Aware values are converted; naive ones are taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def iso_utc(moment: dt.datetime) -> str:
    """An instant as JSON output prints it: ISO 8601 in UTC with Z (naive values are taken as UTC)."""
    return utc_naive(moment).isoformat() + "Z"


def describe_database_error(exc: SQLAlchemyError) -> StoreError:
    """A database error as one line for a user or a log: the driver's first line, never the SQL or parameters.

    SQLAlchemy's own text appends the statement and its parameters (a 43 KB INSERT, customer
    addresses); the driver's first line says what went wrong without them.
    """
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0][:200]
    if "database is locked" in first_line:
        return StoreError("the store is locked: another process kept writing to it for longer than the wait "
                          f"allowed ({BUSY_TIMEOUT_MS // 1000} s)",
                          "run again; if it persists, look for a stuck process holding the SQLite file")
    if "no such table" in first_line or (first_line.startswith('relation "') and "does not exist" in first_line):
        return StoreError(f"the store is incomplete: {first_line}", "run `lifecycle init` to create or upgrade it")
    return StoreError(f"the store refused an operation: {first_line}",
                      "run again with --verbose for the full error, and check the database")


READS_ONLY = "lifecycle_reads_only"  # execution option of the engine behind Store.reading()


def _sqlite_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # The driver's own transaction handling begins lazily, before the first write: a transaction
    # that has read first must then upgrade to a writer, and in WAL mode that fails at once
    # ("database is locked", whatever the busy timeout) when another process wrote meanwhile.
    # So the driver begins nothing, and _sqlite_begin says how each transaction begins.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    # WAL lets readers (`preview`, `serve`, a tick's evaluation) go on while a writer writes;
    # busy_timeout makes a writer wait its turn instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Writers take the write lock when they begin (waiting their turn); readers read one snapshot."""
    reads_only = connection.get_execution_options().get(READS_ONLY, False)
    connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")


def sqlite_pragmas(connection: Connection, **values: str | int) -> None:
    """Set PRAGMAs that SQLite refuses inside a transaction (synchronous), after ending the one in progress."""
    connection.commit()
    for name, value in values.items():
        connection.connection.driver_connection.execute(f"PRAGMA {name}={value}")  # type: ignore[union-attr]


class Store:
    """A handle on one database: `Store(url).init()` creates it, `Store(url).check()` verifies it.

    `session()` is for work that writes: keep its transactions short, since on SQLite each one
    holds the store's single write lock from its first statement to its commit. `reading()` is
    for work that only reads: on its own snapshot, it never waits for a writer nor blocks one.
    """

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
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.reader: Engine = self.engine.execution_options(**{READS_ONLY: True})  # for work that only reads

    def init(self) -> str:
        """Create the store, or upgrade it in place to this program's schema; safe to run again.

        Returns what was done, for the user: created, upgraded from a revision, or already current.
        """
        before, now = migrations.upgrade(self.engine)
        self.signing_key("")  # created now, so that reading commands (preview) never write
        if not before.exists:
            return f"Created {self.display_url} (schema revision {now})"
        if before.legacy or before.revision != now:
            return f"Upgraded {self.display_url} from {before.describe()} to schema revision {now}"
        return f"Already up to date: {self.display_url} (schema revision {now})"

    def check(self) -> None:
        """Refuse a store that was never initialised, or whose schema is older or newer than this program's."""
        try:
            with self.reader.connect() as connection:
                found = migrations.state(connection)
        except OperationalError as exc:
            raise describe_database_error(exc) from None
        if not found.exists:
            raise StoreError(f"no lifecycle store at {self.display_url}", "run `lifecycle init` first")
        if found.ahead:
            raise StoreError(f"the store at {self.display_url} is at schema revision {found.revision}, newer than "
                             f"this program knows (its newest is {migrations.head()})",
                             "run the newer lifecycle-runner release that upgraded it")
        if not found.current:
            raise StoreError(f"the store at {self.display_url} has {found.describe()}, this program needs "
                             f"revision {migrations.head()}", "run `lifecycle init` to upgrade it")

    def drop(self) -> None:
        """Remove every table of the store, the migration mark included (the demo's fresh start, tests)."""
        SQLModel.metadata.drop_all(self.engine)
        with self.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))

    @property
    def display_url(self) -> str:
        """The URL as configured (not as opened read-only), any password masked: safe for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for work that writes (on SQLite each transaction begins IMMEDIATE)."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for work that only reads, on its own snapshot."""
        with Session(self.reader, expire_on_commit=False) as session:
            yield session

    def signing_key(self, configured: str) -> bytes:
        """The configured key, else one generated once and kept in the store."""
        if configured:
            return configured.encode()
        with self.reading() as session:
            row = session.get(Meta, "signing_key")
        if row is None:
            with self.session() as session:
                session.execute(dialect_insert(self.engine, Meta).values(key="signing_key",
                                                                         value=secrets.token_urlsafe(32))
                                .on_conflict_do_nothing(index_elements=["key"]))
                session.commit()
                row = session.get(Meta, "signing_key")
        return row.value.encode()  # type: ignore[union-attr]

    def close(self) -> None:
        self.engine.dispose()
