"""The rehearsal passes for both stacks: resources applied to moto, hosts booted, a cycle landed."""

from __future__ import annotations

import pytest

from infra.mockrun import cached_run
from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator
from rehearsal.report import Report, Status
from rehearsal.run import rehearse

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module", params=["dev", "prod"])
def report(request: pytest.FixtureRequest, emulator: Emulator, database: StandInDatabase) -> Report:
    stack = request.param
    return rehearse(stack, run=cached_run(stack), emulator=emulator, database=database)


def _step(report: Report, host: str, prefix: str) -> Status:
    found = [s for s in report.steps if s.host == host and s.name.startswith(prefix)]
    assert found, f"no step {prefix!r} on {host}: {[s.name for s in report.steps]}"
    return found[0].status


def test_the_rehearsal_passes(report: Report) -> None:
    assert report.passed, report.render()


def test_the_generator_host_ran_for_real(report: Report) -> None:
    for step in (
        "instance profile: assume own role as EC2",
        "systemctl start mdp-sync.service",
        "systemctl start mdp-migrate.service",
        "replication user: exactly the grants the sync needs",
        "one generator cycle landed in the stand-in RDS",
    ):
        assert _step(report, "generator", step) is Status.OK, report.render()
    # What cannot run here is listed, never counted as passed.
    assert _step(report, "generator", "TLS sslmode=verify-full") is Status.SKIPPED
