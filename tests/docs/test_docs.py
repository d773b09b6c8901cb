"""The README and docs/ stay true: links resolve, every command they show runs, no stale figures."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.paths import REPO_ROOT
from mdp.cli import app
from mdp.demo import NEXT_STEPS

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
CONTRACT = REPO_ROOT.parent / "shared" / "contract" / "DATA_CONTRACT.md"
# One page per part of the platform (besides the data contract and generated tables).
PARTS = (
    "source", "ingestion", "transform", "orchestration", "dashboard-and-exports", "aws",
    "snowflake", "airbyte", "ci-cd", "operations", "benchmarks",
)  # fmt: skip

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
MDP = re.compile(r"(?:^|\.venv/bin/)mdp((?: [a-z][a-z-]*){1,2})")
MAKE = re.compile(r"(?:^|[\s(])make ((?:[a-z][a-z-]*)(?: [A-Z_]+=\S+)*)")


def _code(text: str) -> list[str]:
    """Every line of code the page shows: fenced blocks and inline code spans."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    lines = [line for block in blocks for line in block.splitlines()]
    return lines + INLINE.findall(prose)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def _shown(pattern: re.Pattern[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for line in _code(page.read_text()):
            line = line.split(" #", 1)[0].strip()
            for match in pattern.finditer(line):
                found.setdefault(match.group(1).strip(), []).append(page.name)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not ours to check
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, broken


def test_every_mdp_command_shown_exists() -> None:
    shown = _shown(MDP)
    assert {"demo", "sync", "transform", "export", "dashboard", "status"} <= {
        c.split()[0] for c in shown
    }
    runner = CliRunner()
    failed = {}
    for command, pages in shown.items():
        words = command.split()
        result = runner.invoke(app, [*words, "--help"])
        if result.exit_code != 0 and len(words) == 2:
            # "mdp generate into …": the second word is prose, not a subcommand.
            result = runner.invoke(app, [words[0], "--help"])
        if result.exit_code != 0:
            failed[command] = (pages, result.output[-300:])
    assert not failed, failed


def test_every_make_target_shown_exists() -> None:
    shown = _shown(MAKE)
    assert {"demo", "test", "airflow", "dashboard"} <= {t.split()[0] for t in shown}
    failed = {}
    for target, pages in shown.items():
        run = subprocess.run(
            ["make", "-n", *target.split()], cwd=REPO_ROOT, capture_output=True, text=True
        )
        if run.returncode != 0:
            failed[target] = (pages, run.stderr[-300:])
    assert not failed, failed


def test_commands_are_written_to_work_on_a_fresh_clone() -> None:
    """uv lives in .tools/bin on a fresh clone, off PATH: no `uv run`, and `mdp` by its path."""
    wrong = []
    for page in PAGES:
        text = page.read_text()
        wrong += [f"{page.name}: {m}" for m in re.findall(r"uv run [^\n`]*", text)]
        for block in FENCE.findall(text):
            wrong += [f"{page.name}: {ln}" for ln in block.splitlines() if ln.startswith("mdp ")]
    assert not wrong, wrong


def test_the_cli_runs_by_the_path_the_docs_give_without_uv_on_path() -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mdp"), "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "demo" in run.stdout and "<bool>" not in run.stdout


def test_the_demos_next_steps_work_as_written() -> None:
    for command, _ in NEXT_STEPS:
        words = command.split()
        if words[0] == "make":
            run = subprocess.run(["make", "-n", *words[1:]], cwd=REPO_ROOT, capture_output=True)
            assert run.returncode == 0, (command, run.stderr)
        else:
            assert words[0] == ".venv/bin/mdp", command
            assert (REPO_ROOT / words[0]).parent.name == "bin"
            assert CliRunner().invoke(app, words[1:]).exit_code == 0, command


def test_the_readme_is_a_map() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for part in PARTS:
        assert (REPO_ROOT / "docs" / f"{part}.md").is_file(), part
        assert f"(docs/{part}.md)" in text, f"README does not point to docs/{part}.md"


def test_the_data_contract_is_the_shared_one() -> None:
    """docs/data-contract.md is the contract; where the shared original exists, byte for byte."""
    copy = (REPO_ROOT / "docs" / "data-contract.md").read_bytes()
    assert copy.startswith(b"#") and b"NET_REVENUE_BY_PLAN" in copy.upper()
    if CONTRACT.exists():
        assert copy == CONTRACT.read_bytes(), f"copy {CONTRACT} to docs/data-contract.md"


def test_no_hand_written_test_counts() -> None:
    """Test counts and suite timings change with every commit: pytest prints them."""
    stale = []
    for page in PAGES:
        for pattern in (r"\b\d[\d,]* tests\b", r"\b\d[\d,]* passed\b"):
            stale += [f"{page.name}: {m}" for m in re.findall(pattern, page.read_text())]
    assert not stale, stale


def test_the_instance_types_in_the_aws_page_are_the_stacks() -> None:
    rows = {
        key: line
        for line in (REPO_ROOT / "docs" / "aws.md").read_text().splitlines()
        for key in ("generator", "airflow")
        if line.startswith(f"| `{key}.*` |")
    }
    for column, stack in ((2, "dev"), (3, "prod")):
        config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        aws = config["mdp:aws"]
        for key in ("generator", "airflow"):
            cell = rows[key].split("|")[column]
            assert aws[key]["instanceType"] in cell, (stack, key, cell)


STACK_FILES = sorted(REPO_ROOT.glob("Pulumi.*.yaml"))
MONEY = r"\$(\d[\d,]*(?:\.\d+)?)"
BUDGET_ROW = re.compile(rf"^\| `([a-z]+)` \| {MONEY} \|$", re.M)
BUDGET_PHRASE = re.compile(rf"{MONEY}\s+(?:monthly\s+)?budget|budget\s+(?:of\s+)?{MONEY}")


def _budgets() -> dict[str, float]:
    """Each stack's `mdp:cost.monthlyBudgetUsd`, from its Pulumi.<stack>.yaml."""
    return {
        path.name.split(".")[1]: float(
            yaml.safe_load(path.read_text())["config"]["mdp:cost"]["monthlyBudgetUsd"]
        )
        for path in STACK_FILES
    }


def test_the_budgets_the_docs_state_are_the_stacks() -> None:
    budgets = _budgets()
    assert set(budgets) >= {"dev", "prod"}
    # The CI/CD page's table: one row per stack, each the stack file's figure.
    table = BUDGET_ROW.findall((REPO_ROOT / "docs" / "ci-cd.md").read_text())
    assert {stack: float(amount.replace(",", "")) for stack, amount in table} == budgets
    # Any "$N budget" or "budget of $N" elsewhere is one of them.
    wrong = []
    for page in PAGES:
        for match in BUDGET_PHRASE.finditer(page.read_text()):
            amount = float((match.group(1) or match.group(2)).replace(",", ""))
            if amount not in budgets.values():
                wrong.append(f"{page.name}: {' '.join(match.group(0).split())}")
    assert not wrong, f"not a budget of any Pulumi.<stack>.yaml {budgets}: {wrong}"
