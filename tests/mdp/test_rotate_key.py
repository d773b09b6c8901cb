"""`mdp rotate-key`: one more rotation recorded in the stack file, comments kept, a valid config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.paths import REPO_ROOT
from infra.config import build_stack_config
from mdp.cli import app

SNOWFLAKE_SECTION = """\
  # Snowflake: the account and its service users.
  mdp:snowflake:
    organizationName: EXAMPLEORG
    accountName: MDP
    namePrefix: DEV_
    creditQuota: 20
    # Rotate every 30 days.
    keyRotationDays: 30
    dbtAllowedCidrs:
      - 203.0.113.10/32
"""


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((REPO_ROOT / "Pulumi.dev.yaml").read_text() + SNOWFLAKE_SECTION)
    return path


def _rotate(path: Path, user: str, stack: str = "dev") -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["rotate-key", "--stack", stack, "--user", user, "--config-file", str(path)]
    )
    return result.exit_code, result.output


def _section(path: Path) -> dict[str, object]:
    return dict(yaml.safe_load(path.read_text())["config"]["mdp:snowflake"])


def test_each_call_records_one_more_rotation_of_that_user(stack_file: Path) -> None:
    original = stack_file.read_text()
    code, out = _rotate(stack_file, "dbt")
    assert code == 0, out
    assert _section(stack_file)["keyRotations"] == {"DBT": 1}
    assert "pulumi up --stack dev" in out and "nothing signs out" in out
    assert _rotate(stack_file, "DBT")[0] == 0
    assert _rotate(stack_file, "airbyte")[0] == 0
    assert _section(stack_file)["keyRotations"] == {"AIRBYTE": 1, "DBT": 2}
    # Only that line changed: every comment and every other key is as it was.
    added = set(stack_file.read_text().splitlines()) - set(original.splitlines())
    assert added == {"    keyRotations: {AIRBYTE: 1, DBT: 2}"}
    assert set(original.splitlines()) <= set(stack_file.read_text().splitlines())
    # The program reads it as valid config.
    raw = yaml.safe_load(stack_file.read_text())["config"]
    config = build_stack_config("dev", lambda ns, key: raw.get(f"{ns}:{key}"))
    assert config.snowflake is not None
    assert config.snowflake.key_rotations == {"AIRBYTE": 1, "DBT": 2}


def test_a_stack_without_snowflake_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    before = path.read_text()
    code, out = _rotate(path, "dbt")
    assert code == 1
    assert "no `mdp:snowflake` section" in out and "Nothing was changed" in out
    assert path.read_text() == before


@pytest.mark.parametrize(
    ("stack", "user", "message"),
    [("qa", "dbt", "Unknown stack 'qa'"), ("dev", "admin", "AIRBYTE, DBT, DASHBOARD")],
)
def test_unknown_stack_or_user_names_the_choices(
    stack_file: Path, stack: str, user: str, message: str
) -> None:
    code, out = _rotate(stack_file, user, stack)
    assert code == 2 and message in out
