"""The dbt project's profiles and the `mdp transform` entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core import paths
from tests.transform.conftest import LocalBuild
from transform import runner as transform


def test_profiles_take_every_connection_value_from_the_environment() -> None:
    profile = yaml.safe_load((paths.transform_dir() / "profiles.yml").read_text())["mdp"]
    outputs = profile["outputs"]
    assert {"local", "dev", "prod"} <= set(outputs)
    assert "env_var('MDP_DBT_TARGET', 'local')" in profile["target"]
    # The contract's names by default; a stack with a name prefix sets MDP_DBT_DATABASE.
    assert outputs["dev"]["database"] == "{{ env_var('MDP_DBT_DATABASE', 'DBT_DEV') }}"
    assert outputs["prod"]["database"] == "{{ env_var('MDP_DBT_DATABASE', 'ANALYTICS') }}"
    for name in ("dev", "prod"):
        snowflake = outputs[name]
        assert "password" not in snowflake, "Snowflake must use key-pair authentication"
        for key in ("account", "user", "private_key_path", "private_key_passphrase"):
            assert "env_var(" in snowflake[key], f"{name}.{key} must come from the environment"
        assert "DBT_ENV_SECRET_" in snowflake["private_key_passphrase"]
    local = outputs["local"]
    assert "MDP_HOME" in local["path"] and local["path"].endswith("analytics.duckdb")
    assert local["attach"] == [
        {
            "path": local["path"].replace("analytics.duckdb", "raw.duckdb"),
            "alias": "raw",
            "read_only": True,
        }
    ]


def test_build_without_a_raw_warehouse_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_HOME", str(tmp_path))
    with pytest.raises(
        transform.TransformError, match=r"raw\.duckdb does not exist.*Load it first"
    ):
        transform.build()
    assert not (tmp_path / "warehouse" / "analytics.duckdb").exists()


def test_summary_reads_the_marts(local_build: LocalBuild) -> None:
    data = transform.summary(local_build.home / "warehouse" / "analytics.duckdb")
    plans = {row["plan_name"] for row in data["net_revenue_by_plan"]}
    assert plans == {"Basic", "Bronze", "Standard", "Gold", "Platinum"}
    assert {row["plan_name"] for row in data["mrr_by_plan"]} == plans
    assert sum(row["active_subscriptions"] for row in data["mrr_by_plan"]) > 0


def test_source_freshness_reads_the_sync_time(
    local_build: LocalBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_HOME", str(local_build.home))
    outcome = transform.run_dbt(
        ["source", "freshness"], target="local", target_path=local_build.home / "freshness"
    )
    assert outcome.success
    # Every source table but plans, which has no freshness threshold (seeded once).
    assert outcome.statuses == {"pass": len(local_build.fixture.rows) - 1}
