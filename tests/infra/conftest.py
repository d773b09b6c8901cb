"""Fixtures over the Pulumi-mocks harness in `infra/mockrun.py`: each stack's program run, once per session."""

from __future__ import annotations

import pytest

from infra.mockrun import PROD_EC2, ProgramRun, cached_run
from tests.event_loop import pulumi_event_loop  # noqa: F401 (autouse for this package)


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return cached_run("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return cached_run("prod")


@pytest.fixture(scope="session")
def prod_ec2() -> ProgramRun:
    """Prod with `aws.airflow.engine: ec2`: the Airflow host in its private subnet."""
    return cached_run(PROD_EC2)


@pytest.fixture(params=["dev", PROD_EC2], scope="session")
def each_ec2_stack(request: pytest.FixtureRequest) -> ProgramRun:
    """Each stack with Airflow on the EC2 host."""
    return cached_run(request.param)


@pytest.fixture(params=["dev", "prod"], scope="session")
def each_stack(request: pytest.FixtureRequest) -> ProgramRun:
    return cached_run(request.param)
