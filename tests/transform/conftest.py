"""Shared dbt builds over the raw fixture: DuckDB (local target) and fakesnow (Snowflake)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.transform import fixture
from transform import runner as transform


@dataclass
class LocalBuild:
    home: Path
    fixture: fixture.Fixture
    outcome: transform.DbtOutcome
    target_path: Path


@pytest.fixture(scope="session")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBuild]:
    """`dbt build` on the local target over the dirty fixture, in a private MDP_HOME."""
    home = tmp_path_factory.mktemp("mdp_home")
    # Only the build runs with this MDP_HOME: later tests in the session keep their own.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        fx = fixture.build()
        fixture.write_duckdb(home / "warehouse" / "raw.duckdb", fx)
        target_path = home / "dbt_target"
        outcome = transform.run_dbt(["build"], target="local", target_path=target_path)
    yield LocalBuild(home=home, fixture=fx, outcome=outcome, target_path=target_path)
