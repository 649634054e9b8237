"""Alembic's environment: runs the revisions on the connection that `runner.migrations` hands over.

There is no alembic.ini and no URL here: the store's own engine (with its SQLite pragmas) is used,
inside the caller's transaction.
"""

from typing import Any

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from runner import models  # noqa: F401 - importing registers the tables on the metadata


def render_item(kind: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write SQLModel's string type as the plain sa.String it is, so revisions need no sqlmodel import."""
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters columns by copying the table; batch mode writes that for us
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
