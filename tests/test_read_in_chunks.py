"""Reading a large result in chunks: every row comes back, and on PostgreSQL the server-side cursor
is planned for reading every row, without JIT, for that transaction only (runner/sql.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import literal_column, select, text

from runner.sql import read_in_chunks
from runner.store import Store


def test_every_row_comes_back_in_order_whatever_the_chunk(database_url: str):
    store = Store(database_url)
    store.init()
    numbers = select(literal_column("n")).select_from(
        text("(SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) AS t")
    ).order_by(literal_column("n"))
    try:
        with store.reading() as session:
            assert list(read_in_chunks(session, numbers, 2).scalars()) == [1, 2, 3, 4, 5]
    finally:
        store.close()


def test_on_postgresql_the_cursor_is_planned_for_every_row_without_jit_until_the_transaction_ends(
        database_url: str):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server-side cursor nor these settings; the test above covers it")
    store = Store(database_url)
    settings = select(text("current_setting('cursor_tuple_fraction')"), text("current_setting('jit')"))
    try:
        with store.reading() as session:
            before = session.execute(settings).one()
            assert tuple(before) != ("1", "off")  # PostgreSQL's defaults: 0.1, and jit on where built in
            inside = read_in_chunks(session, settings, 10).one()
            assert tuple(inside) == ("1", "off")
            session.commit()
            assert session.execute(settings).one() == before  # SET LOCAL: the next transaction is as before
    finally:
        store.close()
