"""Tests use the public names of the project's modules: no `from x import _y`, no `x._y`."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator

from core.paths import REPO_ROOT

TESTS = REPO_ROOT / "tests"
PACKAGES = {"tests"} | frozenset(
    tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "root_packages"
    ]
)

# Private names that tests still reach, each with the reason it is left for now. An entry is
# (test file relative to tests/, "module.name"). Entries that no longer occur fail the test, so
# the list only shrinks. Today no test needs one.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _is_module(dotted: str) -> bool:
    # Read from the tree rather than imported: importing would load Airflow, Pulumi and dbt.
    path = REPO_ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def private_uses(source: str) -> Iterator[str]:
    """Each private name of a project module that `source` imports or reads, as `module.name`."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # a local name bound to a project module -> that module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project(alias.name):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not _is_project(node.module):
                continue
            for alias in node.names:
                if _private(alias.name):
                    yield f"{node.module}.{alias.name}"
                elif _is_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def module_of(node: ast.expr) -> str | None:
        base = _dotted(node)
        if base is None:
            return None
        head, _, rest = base.partition(".")
        if head not in modules:
            return None
        module = modules[head] + (f".{rest}" if rest else "")
        return module if _is_module(module) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            module = module_of(node.value)
            if module:
                yield f"{module}.{node.attr}"
        # monkeypatch.setattr(module, "_name", ...) reaches the name as a string.
        elif (
            isinstance(node, ast.Call)
            and _dotted(node.func) in {"setattr", "monkeypatch.setattr", "mp.setattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            module = module_of(node.args[0])
            if module:
                yield f"{module}.{node.args[1].value}"


def _found() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(TESTS.rglob("*.py")):
        for use in private_uses(path.read_text()):
            found.add((path.relative_to(TESTS).as_posix(), use))
    return found


def test_no_test_reaches_a_private_name() -> None:
    found = _found()
    assert found - ALLOWED == set(), "use or add a public name instead"
    assert ALLOWED - found == set(), "fixed: remove these entries from ALLOWED"


def test_the_check_sees_both_ways_in() -> None:
    planted = (
        "from infra.mockrun import _sync_run\n"
        "import core.paths\n"
        "from core import catalog\n"
        "import ingestion.sync as sync\n"
        "core.paths._hidden\n"
        "catalog._names\n"
        "sync._load()\n"
        "catalog.__name__\n"
        "monkeypatch.setattr(sync, '_retry', None)\n"
        "other._private\n"
    )
    assert set(private_uses(planted)) == {
        "infra.mockrun._sync_run",
        "core.paths._hidden",
        "core.catalog._names",
        "ingestion.sync._load",
        "ingestion.sync._retry",
    }
