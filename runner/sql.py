"""Portable SQL pieces the dialects spell differently: timestamp arithmetic, keys, insert-or-ignore,
a list of ids as one parameter, reading a large result in chunks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Executable,
    Integer,
    Result,
    Select,
    String,
    TypeDecorator,
    bindparam,
    cast,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from .errors import StoreError


class plus_seconds(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it is
    """`timestamp + seconds`, where seconds may be a column expression."""

    type = DateTime()
    inherit_cache = True
    name = "plus_seconds"


@compiles(plus_seconds, "sqlite")
def _plus_seconds_sqlite(element: plus_seconds, compiler: Any, **kw: Any) -> str:
    stamp, seconds = list(element.clauses)
    return f"datetime({compiler.process(stamp, **kw)}, ({compiler.process(seconds, **kw)}) || ' seconds')"


@compiles(plus_seconds)
def _plus_seconds_default(element: plus_seconds, compiler: Any, **kw: Any) -> str:
    stamp, seconds = list(element.clauses)
    return f"({compiler.process(stamp, **kw)} + make_interval(secs => {compiler.process(seconds, **kw)}))"


class stamp_key(FunctionElement[Any]):  # noqa: N801
    """A timestamp as YYYYMMDDHHMMSS text, identical on every database (used in occurrence keys)."""

    type = String()
    inherit_cache = True
    name = "stamp_key"


@compiles(stamp_key, "sqlite")
def _stamp_key_sqlite(element: stamp_key, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y%m%d%H%M%S', {compiler.process(list(element.clauses)[0], **kw)})"


@compiles(stamp_key)
def _stamp_key_default(element: stamp_key, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(list(element.clauses)[0], **kw)}, 'YYYYMMDDHH24MISS')"


class epoch_seconds(FunctionElement[Any]):  # noqa: N801
    """Whole seconds since 1970-01-01 of a naive-UTC timestamp (or date), rounded down."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


@compiles(epoch_seconds)
def _epoch_seconds_default(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(extract(epoch from {compiler.process(list(element.clauses)[0], **kw)})) AS BIGINT)"


class stamp_from_epoch(FunctionElement[Any]):  # noqa: N801
    """The naive-UTC timestamp `seconds` after 1970-01-01, written the way the store writes its own
    timestamps (on SQLite, text with six fractional digits), so it compares exactly with stored ones."""

    type = DateTime()
    inherit_cache = True
    name = "stamp_from_epoch"


@compiles(stamp_from_epoch, "sqlite")
def _stamp_from_epoch_sqlite(element: stamp_from_epoch, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(list(element.clauses)[0], **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"


@compiles(stamp_from_epoch)
def _stamp_from_epoch_default(element: stamp_from_epoch, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(list(element.clauses)[0], **kw)
    return f"(TIMESTAMP '1970-01-01 00:00:00' + make_interval(secs => {seconds}))"


class month_start(FunctionElement[Any]):  # noqa: N801
    """The first day of the calendar month of a naive-UTC timestamp, as YYYY-MM-DD text."""

    type = String()
    inherit_cache = True
    name = "month_start"


@compiles(month_start, "sqlite")
def _month_start_sqlite(element: month_start, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-01', {compiler.process(list(element.clauses)[0], **kw)})"


@compiles(month_start)
def _month_start_default(element: month_start, compiler: Any, **kw: Any) -> str:
    return f"to_char(date_trunc('month', {compiler.process(list(element.clauses)[0], **kw)}), 'YYYY-MM-DD')"


class week_start(FunctionElement[Any]):  # noqa: N801
    """The Monday of the ISO week of a naive-UTC timestamp, as YYYY-MM-DD text."""

    type = String()
    inherit_cache = True
    name = "week_start"


@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: Any, **kw: Any) -> str:
    # 'weekday 0' moves forward to the Sunday ending the week (a Sunday stays); six days back is its Monday
    return f"date({compiler.process(list(element.clauses)[0], **kw)}, 'weekday 0', '-6 days')"


@compiles(week_start)
def _week_start_default(element: week_start, compiler: Any, **kw: Any) -> str:
    return f"to_char(date_trunc('week', {compiler.process(list(element.clauses)[0], **kw)}), 'YYYY-MM-DD')"


class in_zones_and_ranges(ColumnElement[Any]):  # noqa: N801
    """`(zone AND stamp >= start AND stamp < end) OR ...`: rows whose `zone_column` is one of `zones`
    (None: NULL) and whose `stamp` falls in one of the [start, end) ranges of naive-UTC instants, each
    term one search of a (zone, stamp) index. The zones and instants are written into the SQL as
    literals (the instants as the store writes its own): hundreds of ranges cost no bound parameters
    and no expression objects, and the compiled statement is cached for the same zones and ranges."""

    inherit_cache = True
    _traverse_internals = [("zone_column", InternalTraversal.dp_clauseelement),  # noqa: RUF012 - as SQLAlchemy declares it
                           ("stamp", InternalTraversal.dp_clauseelement),
                           ("zones", InternalTraversal.dp_plain_obj), ("ranges", InternalTraversal.dp_plain_obj)]

    def __init__(self, zone_column: ColumnElement[Any], zones: Iterable[str | None], stamp: ColumnElement[Any],
                 ranges: Iterable[tuple[dt.datetime, dt.datetime]]) -> None:
        self.zone_column, self.stamp = zone_column, stamp
        self.zones, self.ranges = tuple(zones), tuple(ranges)


@compiles(in_zones_and_ranges)
def _in_zones_and_ranges(element: in_zones_and_ranges, compiler: Any, **kw: Any) -> str:
    column, stamp = compiler.process(element.zone_column, **kw), compiler.process(element.stamp, **kw)
    known = [compiler.render_literal_value(name, String()) for name in element.zones if name]
    zones = ([f"{column} IN ({', '.join(known)})"] if known else []) + (
        [f"{column} IS NULL"] if None in element.zones else [])
    terms = [f"({zone} AND {stamp} >= '{start:%Y-%m-%d %H:%M:%S.%f}' AND {stamp} < '{end:%Y-%m-%d %H:%M:%S.%f}')"
             for zone in zones for start, end in element.ranges]
    return f"({' OR '.join(terms)})" if terms else "1 = 0"


def unions(selects: Sequence[Select[Any]], arms: int) -> list[Select[Any]]:
    """The selects as UNION ALLs of up to `arms` each (a lone select as itself): fewer statements to
    build and run, each within the database's limit on compound selects (SQLite's is 500)."""
    chunks = (selects[n:n + arms] for n in range(0, len(selects), arms))
    return [chunk[0] if len(chunk) == 1 else union_all(*chunk) for chunk in chunks]  # type: ignore[misc]


def as_text(expr: ColumnElement[Any]) -> ColumnElement[str]:
    return cast(expr, String)


def sqlite_stamp(moment: dt.datetime) -> str:
    """A timestamp as SQLAlchemy's DateTime keeps it in SQLite ("2026-11-23 10:00:00.000000", any zone
    dropped, not converted), for rows written straight to the driver."""
    return (moment if moment.tzinfo is None else moment.replace(tzinfo=None)).isoformat(" ", "microseconds")


def dialect_insert(engine_or_conn: Engine | Connection, table: Any) -> Any:
    """The dialect's INSERT, which offers on_conflict_do_nothing / on_conflict_do_update."""
    name = engine_or_conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"the store must be SQLite or PostgreSQL, not {name}",
                     "use a sqlite:/// or postgresql+psycopg:// LIFECYCLE_DATABASE_URL")


class _IdList(TypeDecorator[list[int]]):
    """Integers bound as one parameter: an array on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Integer))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        ids = [int(v) for v in value]
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class among(FunctionElement[bool]):  # noqa: N801
    """`column IN (ids)` with the ids bound as one parameter (see `in_ids`). Untyped on purpose: a
    Boolean type would make SQLite's WHERE read `... = 1`, which no index serves."""

    inherit_cache = True
    name = "among"


@compiles(among, "sqlite")
def _among_sqlite(element: among, compiler: Any, **kw: Any) -> str:
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(among)
def _among_default(element: among, compiler: Any, **kw: Any) -> str:
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} = ANY({ids})"


def in_ids(column: Any, ids: Iterable[int]) -> among:
    """`column IN (ids)` for a chunk of ids, bound as one parameter: a thousand ids are neither
    rendered as a thousand placeholders nor compiled into a new statement for every chunk size.
    It still searches the column's index on both databases."""
    return among(column, bindparam(None, list(ids), type_=_IdList()))


def read_in_chunks(session: Session, query: Executable, chunk: int) -> Result[Any]:
    """Every row of `query`, fetched `chunk` at a time (the memory stays flat however many there are).

    On PostgreSQL the rows come through a server-side cursor, which the planner optimises for
    reading a tenth of the rows (`cursor_tuple_fraction`), and the triggers' long UNION ALL
    queries look costly enough to be JIT-compiled. At 1,000,000 customers that turned the
    replenishment evaluation into 93 s (a nested loop over `suppression` chosen for a fast first
    row, plus compilation), where the plan for every row without JIT takes 10 s. So the
    transaction says that every row will be read and that nothing is to be JIT-compiled; SET LOCAL
    lasts until the transaction ends, so a pooled connection is left as it was found.
    """
    conn = session.connection()  # Core: no ORM row loading, a plain select of columns needs none
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        conn.execute(text("SET LOCAL jit = off"))
    return conn.execute(query.execution_options(yield_per=chunk))
