"""The code artifact: the lock file and the code the hosts run, content-addressed, no build output."""

from __future__ import annotations

import ast
from pathlib import Path

from infra.storage import REPO_ROOT, artifact_digest, artifact_files


def _tree(root: Path) -> None:
    for rel, text in {
        "pyproject.toml": "[project]\n",
        "uv.lock": "version = 1\n",
        "orchestration/dags/mdp_daily.py": "dag = 1\n",
        "orchestration/dags/__pycache__/mdp_daily.cpython-311.pyc": "x",
        "transform/dbt_project.yml": "name: mdp\n",
        "transform/target/manifest.json": "{}",
        "transform/logs/dbt.log": "log",
        "tests/test_x.py": "assert True\n",
        ".local/pg/PG_VERSION": "16",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_artifact_holds_code_and_lock_file_but_no_build_output(tmp_path: Path) -> None:
    _tree(tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in artifact_files(tmp_path)}
    assert names == {
        "pyproject.toml",
        "uv.lock",
        "orchestration/dags/mdp_daily.py",
        "transform/dbt_project.yml",
    }


def test_digest_changes_with_content_only(tmp_path: Path) -> None:
    _tree(tmp_path)
    first = artifact_digest(tmp_path, artifact_files(tmp_path))
    assert artifact_digest(tmp_path, artifact_files(tmp_path)) == first
    (tmp_path / "transform" / "target" / "manifest.json").write_text('{"changed": 1}')
    assert artifact_digest(tmp_path, artifact_files(tmp_path)) == first
    (tmp_path / "orchestration" / "dags" / "mdp_daily.py").write_text("dag = 2\n")
    assert artifact_digest(tmp_path, artifact_files(tmp_path)) != first


def test_the_repository_artifact_carries_the_lock_file() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in artifact_files(REPO_ROOT)}
    assert {"uv.lock", "pyproject.toml"} <= names
    assert not any(n.startswith(("tests/", "infra/", ".local/")) for n in names)


def test_the_artifact_carries_every_package_its_code_imports() -> None:
    # A package the hosts' code imports but the artifact leaves out fails only on the host.
    files = artifact_files(REPO_ROOT)
    shipped = {p.relative_to(REPO_ROOT).parts[0] for p in files}
    ours = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}
    imported: dict[str, str] = {}
    for path in files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                imported.setdefault(name.split(".")[0], path.relative_to(REPO_ROOT).as_posix())
    missing = {pkg: where for pkg, where in imported.items() if pkg in ours and pkg not in shipped}
    # The hosts never run the Pulumi program, its rehearsal or its tests.
    assert set(missing) <= {"infra", "stacks", "rehearsal", "tests"}, missing
    assert "core" in shipped
