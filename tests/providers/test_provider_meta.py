"""Meta-tests against drift: every registered provider is proved by the contract or end-to-end
suite, and every setting a provider declares is documented where users look for it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from provider_specs import END_TO_END, HTTP_CASES

from runner.plugins import PROVIDERS, available, load
from runner.providers.base import Provider
from runner.settings import Setting

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {case.name for case in HTTP_CASES} | {"file", "console"}  # see test_provider_contract.py


def registered() -> dict[str, type[Provider]]:
    return {name: load(PROVIDERS, name) for name in available(PROVIDERS)}


def provider_settings() -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    for name, cls in registered().items():
        for setting in cls.settings:
            assert found.setdefault(setting.name, setting) == setting, (
                f"{name} declares {setting.name} differently from another provider")
    return found


def documented_names(path: Path) -> set[str]:
    """Setting names assigned in an env file, commented out (`# LIFECYCLE_X=`) or not."""
    pattern = re.compile(r"^\s*#?\s*(LIFECYCLE_[A-Z0-9_]+)\s*=", re.MULTILINE)
    return set(pattern.findall(path.read_text(encoding="utf-8")))


def test_every_registered_provider_is_covered_by_the_contract_or_end_to_end_suite() -> None:
    uncovered = sorted(set(registered()) - CONTRACT - END_TO_END)
    assert not uncovered, f"providers with no contract or end-to-end test: {uncovered}"


def test_every_provider_setting_is_in_config_example_env() -> None:
    example = PROJECT_ROOT / "config.example.env"
    assert example.is_file(), "config.example.env is missing; it must document every setting"
    missing = sorted(set(provider_settings()) - documented_names(example))
    assert not missing, (f"provider settings missing from config.example.env: {missing} "
                         "(the block to paste is in docs/providers.md)")


def test_every_provider_setting_is_in_the_provider_docs() -> None:
    docs = (PROJECT_ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    missing = sorted(name for name in provider_settings() if name not in docs)
    assert not missing, f"provider settings not described in docs/providers.md: {missing}"


@pytest.mark.parametrize("name", sorted(registered()))
def test_credentials_are_marked_secret(name: str) -> None:
    for setting in registered()[name].settings:
        if re.search(r"(TOKEN|KEY|PASSWORD|SECRET)$", setting.name):
            assert setting.secret, f"{setting.name} holds a credential but is not secret=True"
