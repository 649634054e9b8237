"""Set-based writes shared by the imports: chunked lookups, upserts and updates by id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from ..models import Checkout, CheckoutLine, Customer, CustomerTag, Order, OrderLine, Product
from ..sql import dialect_insert

CHUNK_ROWS = 1000

CUSTOMER = cast(Table, Customer.__table__)
CUSTOMER_TAG = cast(Table, CustomerTag.__table__)
PRODUCT = cast(Table, Product.__table__)
ORDERS = cast(Table, Order.__table__)
ORDER_LINE = cast(Table, OrderLine.__table__)
CHECKOUT = cast(Table, Checkout.__table__)
CHECKOUT_LINE = cast(Table, CheckoutLine.__table__)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str,
           update_columns: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, executemany in chunks."""
    if not rows:
        return
    statement = dialect_insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]], set_={name: statement.excluded[name] for name in update_columns})
    for start in range(0, len(rows), CHUNK_ROWS):
        conn.execute(statement, list(rows[start:start + CHUNK_ROWS]))


def in_chunks(conn: Connection, statement_for: Callable[[list[Any]], Any], keys: Sequence[Any]) -> list[Any]:
    """Run a SELECT ... IN (...) per chunk of keys; one query per chunk, never one per row."""
    found: list[Any] = []
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), CHUNK_ROWS):
        found.extend(conn.execute(statement_for(unique[start:start + CHUNK_ROWS])).all())
    return found


def by_id_update(table: Table) -> Any:
    """UPDATE table SET <keys of each parameter dict> WHERE id = :_id, for executemany."""
    return update(table).where(table.c.id == bindparam("_id"))



def rows_by_key(conn: Connection, table: Table, key: str, columns: Sequence[str],
                keys: Sequence[Any]) -> dict[Any, Any]:
    """The rows of `table` whose `key` is among `keys` (their id and `columns`), by key."""
    return {row._mapping[key]: row for row in in_chunks(
        conn, lambda chunk: select(table.c.id, *(table.c[name] for name in columns)).where(table.c[key].in_(chunk)),
        keys)}


def ids_by_key(conn: Connection, table: Table, key: str, keys: Sequence[Any]) -> dict[Any, int]:
    """The id of each row of `table` whose `key` is among `keys` (rows just inserted), by key."""
    return {row[0]: row[1] for row in in_chunks(
        conn, lambda chunk: select(table.c[key], table.c.id).where(table.c[key].in_(chunk)), keys)}


def children_of(conn: Connection, table: Table, parent: str, parent_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The rows of `table` under each of `parent_ids` (by its column `parent`), in id order."""
    children: dict[int, list[Any]] = defaultdict(list)
    for row in in_chunks(conn, lambda chunk: select(table).where(table.c[parent].in_(chunk))
                         .order_by(table.c[parent], table.c.id), parent_ids):
        children[row._mapping[parent]].append(row)
    return children
