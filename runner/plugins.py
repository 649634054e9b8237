"""Extension points found through entry points; built-ins register the same way as third parties."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigError

PROVIDERS = "lifecycle.providers"
TRIGGERS = "lifecycle.triggers"
WEBHOOKS = "lifecycle.webhooks"


@cache
def available(group: str) -> dict[str, Any]:
    """Name -> entry point for every installed plugin of a group."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> Any:
    """The class registered under `name`, or a ConfigError listing what is installed."""
    found = available(group)
    if name not in found:
        choices = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"no {group} plugin named {name!r}",
                          f"use one of: {choices} (or install a package that provides it)")
    return found[name].load()
