"""Fixtures: a sample ANALYTICS warehouse under a temporary MDP_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import paths
from exports.sample import build_sample_warehouse


@pytest.fixture
def mdp_home(private_home: Path) -> Path:
    return private_home


@pytest.fixture
def warehouse(mdp_home: Path) -> Path:
    return build_sample_warehouse(paths.analytics_db(), payments=6_000, months=8)
