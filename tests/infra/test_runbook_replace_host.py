"""The runbook's host replacement picks exactly the host's instance from the stack's state, or stops."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from core.paths import REPO_ROOT
from infra.mockrun import ProgramRun
from tests.infra.snowflake.conftest import cached_snowflake

INSTANCE = "aws:ec2/instance:Instance"

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the runbook's filter needs jq")


def _filter() -> str:
    """The jq filter of the runbook's "Replacing the Airflow host", as written there."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Replacing the Airflow host", 1)[1].split("\n### ", 1)[0]
    (found,) = re.findall(r"jq -er '([^']+)'", section)
    assert 'pulumi up --stack dev --replace "$urn"' in section
    return found


def _matches(run: ProgramRun, jq_filter: str, extra: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """What the filter prints over `pulumi stack export` of this run (its resources' URNs)."""
    urns = [r.urn for r in run.resources] + list(extra)
    export = {"deployment": {"resources": [{"urn": urn} for urn in urns]}}
    result = subprocess.run(
        ["jq", "-er", jq_filter], input=json.dumps(export), capture_output=True, text=True
    )
    return result.returncode, result.stdout.split()


def test_on_an_ec2_stack_it_picks_the_airflow_instance_and_no_alarm(
    each_ec2_stack: ProgramRun,
) -> None:
    run = each_ec2_stack
    # With `mdp:alerts` set, the host's alarms carry its name inside theirs (a grep finds them).
    alarm = (
        f"urn:pulumi:{run.stack}::mdp::mdp:alerts:Alerts$aws:cloudwatch/metricAlarm:MetricAlarm"
        "::alerts-airflow-instance-check"
    )
    code, urns = _matches(run, _filter(), (alarm,))
    assert code == 0
    (instance,) = [r for r in run.resources if r.type == INSTANCE and r.name == "airflow-instance"]
    assert urns == [instance.urn]


def test_on_mwaa_it_finds_no_airflow_host_and_stops(prod: ProgramRun) -> None:
    code, urns = _matches(prod, _filter())
    # jq -e fails on no match, so the `&& pulumi up --replace` never runs.
    assert code != 0 and urns == []


def test_on_mwaa_the_dashboard_host_is_replaced_the_same_way() -> None:
    run = cached_snowflake("prod").run
    code, urns = _matches(run, _filter().replace("::airflow-instance", "::dashboard-instance"))
    (instance,) = [
        r for r in run.resources if r.type == INSTANCE and r.name == "dashboard-instance"
    ]
    assert code == 0 and urns == [instance.urn]
