"""Set-based writes shared by the imports: chunked lookups, upserts and updates by id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, update

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

