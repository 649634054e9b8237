"""Fixtures of the chaos suite, and the one line of figures it prints at the end of a run.

The suite is marked `chaos`: `pytest -m chaos` runs only it, `pytest -m "not chaos"` skips it.
Its randomness is seeded (CHAOS_SEED in the environment picks another seed; the summary line
names the one used, so a failing run can be repeated).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from chaoskit import ChaosShop, Figures, build_shop

DEFAULT_SEED = 20261123
FIGURES = pytest.StashKey[Figures]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = Figures(int(os.environ.get("CHAOS_SEED", DEFAULT_SEED)))


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    return pytestconfig.stash[FIGURES]


@pytest.fixture(scope="session")
def seed(figures: Figures) -> int:
    return figures.seed


@pytest.fixture(scope="session")
def chaos_shop(tmp_path_factory: pytest.TempPathFactory) -> ChaosShop:
    """The demo shop and campaign set, built once; each test ticks on its own copy."""
    return build_shop(tmp_path_factory.mktemp("chaos-shop"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Time each chaos test with its fixtures, shared ones included."""
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        if item.get_closest_marker("chaos") is not None:
            item.config.stash[FIGURES].seconds += time.perf_counter() - started


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, None)
    if figures is not None and figures.seconds:
        terminalreporter.write_line(figures.line())
