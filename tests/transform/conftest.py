"""Shared dbt builds over the raw fixture: DuckDB (local target) and fakesnow (Snowflake)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.transform import fixture
from transform import runner as transform


@dataclass
class LocalBuild:
    home: Path
    fixture: fixture.Fixture
    outcome: transform.DbtOutcome
    target_path: Path


# The session's `local_build` fixture is in tests/conftest.py: the dashboard tests read it too.
