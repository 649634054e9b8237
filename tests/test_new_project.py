"""`lifecycle new-project`: the shipped campaigns and templates in a folder of their own, from the installed
package; the package ships exactly the repository's files."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from shopkit import ROOT
from test_cli import run

from runner.project import SHIPPED
from runner.settings import example_env

PACKAGE = ROOT / "runner" / "project"


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def repository_set() -> dict[str, bytes]:
    return {f"{name}/{path}": data for name in SHIPPED for path, data in files(ROOT / name).items()}


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory outside the repository, with no LIFECYCLE_* settings."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LIFECYCLE_")]:
        monkeypatch.delenv(name)
    return tmp_path


def test_a_new_project_holds_the_shipped_files_and_validates(elsewhere: Path, capsys) -> None:
    code, out, err = run(capsys, "new-project", "shop")

    assert code == 0, err
    project = elsewhere / "shop"
    written = files(project)
    assert {k: v for k, v in written.items() if k.split("/")[0] in SHIPPED} == repository_set()
    assert written[".env"].decode() == example_env()
    assert {"schema/campaign.schema.json", "schema/policy.schema.json"} <= set(written)
    shipped = repository_set()
    campaigns, templates = (sum(1 for name in shipped if name.startswith(f"{folder}/")) for folder in SHIPPED)
    assert out.splitlines()[:3] == [
        f"Wrote {campaigns} campaign files, {templates} templates, schema/ and .env in shop", "Next:", "  cd shop"]
    os.chdir(project)
    code, out, err = run(capsys, "validate")
    assert code == 0, err
    assert out.startswith(f"OK: {campaigns - 1} campaign(s) valid")  # every file but _policy.yaml


def test_a_folder_that_is_not_empty_is_refused_unless_forced(elsewhere: Path, capsys) -> None:
    project = elsewhere / "shop"
    project.mkdir()
    (project / ".env").write_text("LIFECYCLE_SECRET_KEY=keep-me\n", encoding="utf-8")

    code, _, err = run(capsys, "new-project", "shop")

    assert code == 1
    assert err.splitlines() == ["Error: shop is not empty",
                                "Hint: name a new folder, or add --force to write the project's files into this one "
                                "(files of the same names are replaced; an existing .env is kept)"]
    assert files(project) == {".env": b"LIFECYCLE_SECRET_KEY=keep-me\n"}

    code, out, _ = run(capsys, "new-project", "shop", "--force")

    assert code == 0 and "kept the existing .env" in out.splitlines()[0]
    assert (project / ".env").read_text() == "LIFECYCLE_SECRET_KEY=keep-me\n"
    assert (project / "campaigns" / "winback.yaml").is_file()


def test_the_package_links_to_the_repositorys_campaigns_and_templates() -> None:
    for name in SHIPPED:
        assert (PACKAGE / name).is_symlink() and (PACKAGE / name).resolve() == (ROOT / name).resolve()


def test_package_data_takes_every_shipped_file() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "runner.project"]
    for path in repository_set():
        # setuptools' `**/` also matches no folder at all
        assert any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.replace("**/", "")) for p in patterns), \
            f"{path} would be left out of the wheel: add its kind to package-data in pyproject.toml"


def test_the_wheel_ships_the_repositorys_files(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "network" in built.stderr.lower():
        pytest.skip("building a wheel needs setuptools from the package index")
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    prefix = "runner/project/"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n.removeprefix(prefix): archive.read(n) for n in archive.namelist()
                   if n.startswith(prefix) and not n.endswith(".py")}
    assert shipped == repository_set()
