"""Airflow on Amazon MWAA: the engine switch, its validated settings, and what `engine: mwaa` declares."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, build_stack_config
from infra.mockrun import last_declared, run_program, stack_config


def _config(stack: str, airflow: dict[str, Any], **aws: Any) -> Any:
    raw = stack_config(stack)
    raw["mdp:aws"]["airflow"] |= airflow
    raw["mdp:aws"] |= aws
    return build_stack_config(stack, lambda ns, key: raw.get(f"{ns}:{key}"))


def test_dev_defaults_to_the_ec2_host_and_prod_to_mwaa() -> None:
    assert _config("dev", {}).aws.airflow.engine == "ec2"
    prod = _config("prod", {}).aws.airflow
    assert prod.engine == "mwaa"
    assert prod.mwaa.schedulers >= 2  # two schedulers: one can fail without stopping the DAG


def test_bad_environment_class_and_worker_count_stop_the_program_with_their_fixes() -> None:
    with pytest.raises(ConfigError) as err:
        run_program(
            "prod",
            overrides={
                "mdp:aws.airflow.mwaa.environmentClass": "mw1.huge",
                "mdp:aws.airflow.mwaa.maxWorkers": 40,
            },
        )
    message = str(err.value)
    assert last_declared() == []
    assert "mdp:aws.airflow.mwaa.environmentClass" in message and "mw1.huge" in message
    assert "pulumi config set --path 'aws.airflow.mwaa.environmentClass' mw1.small" in message
    assert "mdp:aws.airflow.mwaa.maxWorkers: MWAA runs 1 to 25 workers" in message
    assert "pulumi config set --path 'aws.airflow.mwaa.maxWorkers' 5 --stack prod" in message


@pytest.mark.parametrize(
    ("mwaa", "key", "problem"),
    [
        ({"minWorkers": 4, "maxWorkers": 2}, "maxWorkers", "at least minWorkers (4)"),
        ({"environmentClass": "mw1.micro", "maxWorkers": 2}, "maxWorkers", "1 to 1 workers"),
        ({"environmentClass": "mw1.micro", "schedulers": 2}, "schedulers", "exactly 1 scheduler"),
        ({"schedulers": 6}, "schedulers", "2 to 5 schedulers"),
        ({"minWorkers": 0}, "minWorkers", "1 to 25 workers"),
        (
            {"weeklyMaintenanceWindowStart": "Sunday 3am"},
            "weeklyMaintenanceWindowStart",
            "DAY:HH:MM",
        ),
        (
            {"weeklyMaintenanceWindowStart": "SUN:03:15"},
            "weeklyMaintenanceWindowStart",
            "half hour",
        ),
    ],
)
def test_mwaa_settings_outside_what_mwaa_accepts_name_the_key(
    mwaa: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _config("prod", {"mwaa": mwaa})
    (issue,) = err.value.issues
    assert issue.key == f"mdp:aws.airflow.mwaa.{key}"
    assert problem in issue.problem
    assert issue.fix.startswith(f"pulumi config set --path 'aws.airflow.mwaa.{key}' ")


def test_unknown_engine_and_mwaa_without_nat_name_their_fix() -> None:
    with pytest.raises(ConfigError) as err:
        _config("dev", {"engine": "k8s"})
    assert err.value.issues[0].key == "mdp:aws.airflow.engine"
    assert "'ec2' or 'mwaa'" in err.value.issues[0].problem
    with pytest.raises(ConfigError) as err:
        _config("dev", {"engine": "mwaa"})
    (issue,) = err.value.issues
    assert issue.key == "mdp:aws.natGateway"
    assert issue.fix == "pulumi config set --path 'aws.natGateway' true --stack dev"
    assert _config("dev", {"engine": "mwaa"}, natGateway=True).aws.airflow.engine == "mwaa"
