"""Fixtures over the Pulumi-mocks harness in `infra/mockrun.py`: each stack's program run, once per session."""

from __future__ import annotations

import pytest

from infra.mockrun import ProgramRun, cached_run
from tests.event_loop import pulumi_event_loop  # noqa: F401 (autouse for this package)


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return cached_run("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return cached_run("prod")


@pytest.fixture(params=["dev", "prod"], scope="session")
def each_stack(request: pytest.FixtureRequest) -> ProgramRun:
    return cached_run(request.param)
