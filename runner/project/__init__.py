"""The starting point of a shop's own project folder: the shipped campaigns and templates, settings to edit.

`campaigns/` and `templates/` here are links to the repository's folders of the same names, so the
wheel ships exactly the files a clone holds (pyproject.toml package-data; tests/test_new_project.py
checks that both stay one set).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import LifecycleError
from ..schema import write_schemas
from ..settings import example_env

SHIPPED = ("campaigns", "templates")
ENV_FILE = ".env"


def _copy(source: Traversable, target: Path) -> list[Path]:
    written = []
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir(), key=lambda entry: entry.name):
        if item.is_dir():
            written += _copy(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())
            written.append(target / item.name)
    return written


def new_project(folder: Path, *, force: bool = False) -> list[Path]:
    """Write the shipped campaigns, templates, their JSON Schema and a `.env` of every setting into
    `folder`, which must be new or empty unless `force` (then files of the same names are replaced, and
    an existing `.env` is kept: it may hold the shop's secrets). Returns the files written."""
    if folder.exists() and not folder.is_dir():
        raise LifecycleError(f"{folder} is a file, not a folder", "name a new folder for the project")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise LifecycleError(f"{folder} is not empty",
                             "name a new folder, or add --force to write the project's files into this one "
                             "(files of the same names are replaced; an existing .env is kept)")
    shipped = resources.files(__package__)
    written = [path for name in SHIPPED for path in _copy(shipped / name, folder / name)]
    written += write_schemas(folder / "schema")  # the campaign files point editors at ../schema/
    env = folder / ENV_FILE
    if not env.exists():
        env.write_text(example_env(), encoding="utf-8")
        written.append(env)
    return written
