"""The GitHub workflows lint clean and call the commands the README documents, not copies of them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# Tools the Makefile wraps: a workflow that calls them directly has copied a recipe.
WRAPPED_TOOLS = re.compile(r"\b(pytest|ruff|mypy|sqlfluff|dbt|uv (sync|run)|pip install)\b")


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("actionlint")
    assert exe, "actionlint is not installed in the environment (it comes with `make install`)"
    return subprocess.run(
        [exe, "-no-color", *map(str, paths)], capture_output=True, text=True, check=False
    )


def run_steps(workflow: Path) -> list[str]:
    doc = yaml.safe_load(workflow.read_text())
    return [step["run"] for job in doc["jobs"].values() for step in job["steps"] if "run" in step]


def readme_commands() -> set[str]:
    """Every command line of the shell code blocks of the README and its docs pages."""
    commands: set[str] = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        shell, fenced = False, False
        for line in page.read_text().splitlines():
            if line.startswith("```"):
                fenced = not fenced
                shell = fenced and line[3:].strip() in ("", "bash", "sh", "console", "shell")
                continue
            command = line.split("#")[0].strip()
            if shell and command:
                commands.add(command)
    return commands


def test_the_three_workflows_exist():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "preview.yml", "deploy.yml"}


def test_actionlint_passes_on_every_workflow():
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.event.no_such_thing.title }}\n"
        "      - uses: actions/checkout@v5\n        with: {fetch-depth: banana}\n"
        "    needs: [missing-job]\n"
    )
    result = actionlint(bad)
    assert result.returncode != 0
    assert "missing-job" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_workflows_call_readme_commands_not_copies(workflow: Path):
    documented = readme_commands()
    documented_targets = {c.split()[1] for c in documented if c.startswith("make ")}
    for script in run_steps(workflow):
        # A make target may carry a tool's name (`make dbt-manifest`); only direct calls count.
        assert not WRAPPED_TOOLS.search(re.sub(r"\bmake\s+[\w-]+", "", script)), (
            f"{workflow.name} runs a tool directly instead of the README's make target:\n{script}"
        )
        for target in re.findall(r"\bmake\s+([a-z][\w-]*)", script):
            assert target in documented_targets, (
                f"{workflow.name} calls `make {target}`, which neither README.md nor docs/ documents"
            )


def test_ci_runs_the_readme_test_command():
    scripts = "\n".join(run_steps(ROOT / ".github" / "workflows" / "ci.yml"))
    assert "make test" in scripts and "make test" in readme_commands()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _pulumi_steps(workflow: str) -> list[tuple[str, dict[str, Any]]]:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    return [
        (name, step.get("with", {}))
        for name, job in doc["jobs"].items()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("pulumi/actions")
    ]


def test_the_prod_stack_runs_the_policy_pack_with_production_on():
    """The pack's prod-only rules (Multi-AZ, deletion protection, ...) apply only when the
    prod stack passes the production policy config."""
    production = "infra/policies/production.json"
    assert (ROOT / production).is_file()
    preview = _pulumi_steps("preview.yml")
    assert preview and all(w.get("policyPacks") == "infra/policies" for _, w in preview)
    assert all(
        w.get("policyPackConfigs") == f"${{{{ matrix.stack == 'prod' && '{production}' || '' }}}}"
        for _, w in preview
    ), preview
    deploys = {
        w["stack-name"]: w for _, w in _pulumi_steps("deploy.yml") if w.get("command") == "up"
    }
    assert deploys["prod"].get("policyPackConfigs") == production, deploys["prod"]
    assert "policyPackConfigs" not in deploys["dev"], deploys["dev"]


def test_deploys_build_the_manifest_before_the_bundle_goes_up_and_prod_waits_for_approval():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    for name, job in doc["jobs"].items():
        steps = job["steps"]
        runs = [step.get("run", "") for step in steps]
        up = next(
            i
            for i, step in enumerate(steps)
            if step.get("uses", "").startswith("pulumi/actions") and step["with"]["command"] == "up"
        )
        # MWAA's plugins.zip carries the dbt manifest, so it is built before `pulumi up`.
        assert "make dbt-manifest" in runs[:up], name
        # The object versions of each deploy are kept with its stack outputs.
        assert any("pulumi stack output" in r for r in runs[up:]), name
    assert doc["jobs"]["prod"]["environment"] == "prod"
    assert doc["jobs"]["prod"]["needs"] == "dev"
