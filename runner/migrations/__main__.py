"""`python -m runner.migrations "what changes"`: draft the next revision from the models.

Brings a scratch SQLite store to head, compares it with the tables of runner/models/ and writes
versions/<next number>_<slug>.py, for you to read, complete and test (docs/schema.md).
"""

from __future__ import annotations

import sys
import tempfile

from alembic import command
from sqlalchemy import create_engine

from . import config, head, upgrade


def main(argv: list[str]) -> int:
    message = " ".join(argv).strip()
    if not message or message.startswith("-"):  # an option such as --help is not a revision's message
        print('usage: python -m runner.migrations "what the revision changes"', file=sys.stderr)
        return 0 if message in ("-h", "--help") else 2
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/scratch.db")
        upgrade(engine)
        with engine.begin() as connection:
            script = command.revision(config(connection), message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}")
        engine.dispose()
    print(f"wrote {script.path}; read it, make it right for SQLite and PostgreSQL, and test the upgrade"  # type: ignore[union-attr]
          if script else "nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
