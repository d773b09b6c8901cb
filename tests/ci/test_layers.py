"""The import contract in `make lint`: it holds on the tree, and a planted upward import breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.paths import REPO_ROOT

PACKAGES = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint_imports), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's Python packages, so that a test can plant an import in it."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(REPO_ROOT / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package,
            root / package,
            ignore=shutil.ignore_patterns("__pycache__", "target", "dbt_packages", "logs"),
        )
    return root


def test_every_package_is_in_the_contract_and_the_wheel() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert set(PACKAGES) == on_disk
    assert set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == on_disk


def test_the_tree_keeps_the_contract(tree: Path) -> None:
    done = _lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "arrow"),
    [
        ("core/paths.py", "import mdp.cli", "core is not allowed to import mdp"),
        ("ingestion/sync.py", "import mdp.status", "ingestion is not allowed to import mdp"),
        (
            "exports/writer.py",
            "import dashboard.metrics",
            "exports is not allowed to import dashboard",
        ),
    ],
)
def test_a_planted_upward_or_sideways_import_breaks_it(
    tree: Path, module: str, planted: str, arrow: str
) -> None:
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{planted}  # planted\n")
    try:
        done = _lint_imports(tree)
    finally:
        path.write_text(original)
    assert done.returncode != 0
    assert arrow in done.stdout, done.stdout
