"""Long commands show progress on a terminal and print nothing of it in a pipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import AT, run, workdir  # noqa: F401 - workdir is a fixture used here

ROWS = 1500


def transactions(folder: Path) -> Path:
    path = folder / "sales.csv"
    path.write_text("customer_id,date,quantity,amount\n"
                    + "".join(f"{n % 300},2026-01-{n % 28 + 1:02d},1,{n % 50 + 5}.00\n" for n in range(ROWS)),
                    encoding="utf-8")
    return path


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard error counts as a terminal, as rich reads FORCE_COLOR."""
    monkeypatch.setenv("FORCE_COLOR", "1")


def test_demo_shows_each_step_on_a_terminal(workdir: Path, terminal: None, capsys) -> None:  # noqa: F811
    code, out, err = run(capsys, "demo", "--customers", "200", "--at", AT)

    assert code == 0, err
    assert "200/200 customers" in err and "Generating the demo shop" in err
    assert "Computing recommendations" in err and "Running one tick" in err
    assert "Generating" not in out


def test_demo_prints_no_progress_in_a_pipe(workdir: Path, capsys) -> None:  # noqa: F811
    code, out, err = run(capsys, "demo", "--customers", "200", "--at", AT)

    assert code == 0
    assert err == ""
    assert out.startswith("Demo shop in ")


def test_imports_count_rows_on_a_terminal_only(workdir: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                               capsys) -> None:
    assert run(capsys, "init")[0] == 0
    monkeypatch.setenv("FORCE_COLOR", "1")

    code, _, err = run(capsys, "import", "transactions", str(transactions(workdir)))
    assert code == 0, err
    assert "Importing sales.csv: " in err and " rows" in err

    for name in ("gone.csv", "left.csv"):
        (workdir / name).write_text("email\n" + "".join(f"{name}{n}@example.com\n" for n in range(50)))
    code, _, err = run(capsys, "suppress", "import", "gone.csv")
    assert code == 0, err
    assert "Importing gone.csv: " in err and " rows" in err

    monkeypatch.delenv("FORCE_COLOR")
    code, _, err = run(capsys, "suppress", "import", "left.csv")
    assert code == 0 and "Importing" not in err
