"""Campaign files: hostile YAML is refused quickly, cheaply and with its file and line."""

from __future__ import annotations

import time
import tracemalloc
import warnings
from pathlib import Path

import pytest
from shopkit import ROOT

from runner.campaigns import Campaign, load_campaigns, parse_campaign
from runner.errors import Problem
from runner.yamlfiles.reading import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES

WINBACK = (ROOT / "campaigns" / "winback.yaml").read_text(encoding="utf-8")
PARAMS_LINE = "    discount_percent: 15\n"  # the last line under message.params
EXTRA_LINE = WINBACK[:WINBACK.index(PARAMS_LINE)].count("\n") + 2  # the line added after it


def with_params(extra: str) -> str:
    """The shipped win-back campaign with `extra` (YAML lines) added under message.params."""
    assert PARAMS_LINE in WINBACK
    return WINBACK.replace(PARAMS_LINE, PARAMS_LINE + extra)


def alias_bomb(levels: int = 7) -> str:
    """Ten aliases per level: 10**levels leaves once expanded, in a few hundred bytes."""
    lines = ["    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"]
    lines += [f"    l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, levels)]
    return with_params("".join(lines))


def parse_bounded(path: Path, seconds: float, megabytes: float) -> tuple[Campaign | None, list[Problem]]:
    """parse_campaign(path), failing unless it allocates under `megabytes` at its peak and finishes within
    `seconds`, a guard against the minutes a hostile file took, far above the milliseconds it takes now
    (speed itself is measured by scripts, not asserted by tests on a shared machine).

    Time and memory are measured in separate runs: tracing allocations slows Python down severalfold.
    """
    parse_campaign(ROOT / "campaigns" / "birthday.yaml")  # imports and plugin lookups out of the measurement
    started = time.perf_counter()
    result = parse_campaign(path)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        parse_campaign(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes * 2**20, f"allocated {peak / 2**20:.1f} MB at the peak"
    return result


def refused(tmp_path: Path, text: str, seconds: float = 10.0) -> Problem:
    path = tmp_path / "winback.yaml"
    path.write_text(text, encoding="utf-8")
    campaign, problems = parse_bounded(path, seconds, megabytes=4)
    assert campaign is None
    (problem,) = problems
    assert problem.path == str(path)
    assert "\n" not in str(problem)
    return problem


def test_an_alias_bomb_is_refused_at_its_first_alias(tmp_path: Path) -> None:
    problem = refused(tmp_path, alias_bomb())

    assert problem.line == EXTRA_LINE + 1
    assert problem.message == "YAML alias *l0 is not allowed in a campaign file"
    assert problem.hint is not None and "write the value out in full" in problem.hint


def test_a_merge_key_is_an_alias_too(tmp_path: Path) -> None:
    problem = refused(tmp_path, with_params("    base: &base {a: 1}\n    copy:\n      <<: *base\n"))

    assert (problem.line, problem.message) == (EXTRA_LINE + 2, "YAML alias *base is not allowed in a campaign file")


@pytest.mark.parametrize(("nesting", "line"), [
    pytest.param("    deep: " + "[" * 10_000 + "]" * 10_000 + "\n", EXTRA_LINE, id="flow-sequences"),
    pytest.param("    deep: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n", EXTRA_LINE, id="flow-mappings"),
    pytest.param("    deep:\n      " + "- " * 10_000 + "x\n", EXTRA_LINE + 1, id="block-sequences"),
    pytest.param("".join("  " * (n + 2) + f"k{n}:\n" for n in range(30)) + "  " * 32 + "v: 1\n",
                 EXTRA_LINE + MAX_DEPTH - 3, id="block-mappings"),
])
def test_deep_nesting_is_refused_while_parsing(tmp_path: Path, nesting: str, line: int) -> None:
    problem = refused(tmp_path, with_params(nesting))

    assert (problem.line, problem.message) == (line, f"the YAML nests deeper than {MAX_DEPTH} levels")
    assert problem.hint is not None and "flatten" in problem.hint


def test_nesting_up_to_the_bound_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "winback.yaml"
    levels = MAX_DEPTH - 3  # the root mapping, message and params come first
    path.write_text(with_params("    deep: " + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "\n"), encoding="utf-8")

    campaign, problems = parse_campaign(path)

    assert problems == []
    assert campaign is not None and campaign.spec.message.params["deep"] == [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]


def test_a_file_with_too_many_values_is_refused_where_the_bound_is_crossed(tmp_path: Path) -> None:
    many = "".join(f"      - {n}\n" for n in range(MAX_NODES))
    problem = refused(tmp_path, with_params("    many:\n" + many), seconds=20.0)  # 2,000 values are read first

    assert problem.message == f"the file holds more than {MAX_NODES} YAML values"
    assert EXTRA_LINE < problem.line <= EXTRA_LINE + MAX_NODES  # type: ignore[operator]


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    problem = refused(tmp_path, with_params(f"    copy: {'x' * MAX_FILE_BYTES}\n"))

    assert problem.message == f"the file is larger than {MAX_FILE_BYTES // 1024} KB"


def test_one_hostile_file_does_not_hide_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "birthday.yaml").write_text((ROOT / "campaigns" / "birthday.yaml").read_text(encoding="utf-8"))
    (folder / "winback.yaml").write_text(alias_bomb(), encoding="utf-8")

    campaigns, problems = load_campaigns(folder)

    assert [c.id for c in campaigns] == ["birthday"]
    assert [str(p).split(": ")[0] for p in problems] == [f"{folder / 'winback.yaml'}:{EXTRA_LINE + 1}"]


def test_an_anchor_without_alias_is_allowed_and_silent(tmp_path: Path) -> None:
    path = tmp_path / "winback.yaml"
    path.write_text(WINBACK.replace("name: ", "name: &a ").replace("template: ", "template: &a "), encoding="utf-8")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ruamel warns about a reused anchor on several lines of stderr
        campaign, problems = parse_campaign(path)

    assert problems == [] and campaign is not None


@pytest.mark.parametrize(("extra", "line", "message"), [
    pytest.param("    ? [a, b]\n    : 1\n", EXTRA_LINE, "a key here is a list or mapping, not a name", id="list-key"),
    pytest.param("    ? {id: []}\n    : 1\n", EXTRA_LINE, "a key here is a list or mapping, not a name",
                 id="unhashable-key"),
    pytest.param("    sale_ends: 2025-02-30\n", EXTRA_LINE,
                 "the value '2025-02-30' cannot be read (day is out of range for month)", id="impossible-date"),
    pytest.param("    flag: !!bool maybe\n", EXTRA_LINE, "the value 'maybe' cannot be read ('maybe')", id="bad-tag"),
])
def test_values_the_yaml_library_cannot_build_are_problems_on_their_line(tmp_path: Path, extra: str, line: int,
                                                                         message: str) -> None:
    problem = refused(tmp_path, with_params(extra))

    assert (problem.line, problem.message) == (line, message)
