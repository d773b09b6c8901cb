"""The dashboard's key check: a new key in its secret restarts the dashboard, nothing else does."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.cloud_init import (
    DASHBOARD_KEY_CHECK,
    FILES,
    AirflowBoot,
    DashboardBoot,
    DashboardHostBoot,
    render_airflow,
    render_dashboard,
)

SCRIPT = FILES / f"{DASHBOARD_KEY_CHECK}.sh"
ARN = "arn:aws:secretsmanager:us-east-1:1:secret:mdp/dev/snowflake/dashboard-svc-AbCdEf"
PEM = "-----" + "BEGIN PRIVATE KEY-----MIIEold-----END PRIVATE KEY-----"
NEW_PEM = "-----" + "BEGIN PRIVATE KEY-----MIIEnew-----END PRIVATE KEY-----"
DASHBOARD = DashboardBoot("acct", "DEV_DASHBOARD_SVC", "REPORTER", "REPORTING_WH", "ANALYTICS", ARN)

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the check script needs jq")


def _host(tmp_path: Path, secret: dict[str, str]) -> tuple[dict[str, str], Path]:
    """A fake `aws` answering with `secret`, a recording `systemctl`, and the running key."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(secret))
    # Answers like `aws secretsmanager get-secret-value --query SecretString --output text`.
    (bin_dir / "aws").write_text(f"#!/usr/bin/env bash\ncat {tmp_path / 'secret.json'}\n")
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "systemctl.log"}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    key = tmp_path / "run" / "reporter.p8"
    key.parent.mkdir()
    # As the key script writes it: jq's raw output, with its newline.
    key.write_text(PEM + "\n")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AWS_REGION": "us-east-1",
        "MDP_DASHBOARD_KEY_SECRET_ARN": ARN,
        "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": str(key),
    }
    return env, tmp_path / "systemctl.log"


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)


def test_the_same_key_restarts_nothing(tmp_path: Path) -> None:
    env, systemctl = _host(tmp_path, {"user": "DEV_DASHBOARD_SVC", "private_key": PEM})
    result = _check(env)
    assert result.returncode == 0, result.stderr
    assert not systemctl.exists() and result.stdout == ""


def test_a_new_key_restarts_the_running_dashboard_only(tmp_path: Path) -> None:
    env, systemctl = _host(tmp_path, {"user": "DEV_DASHBOARD_SVC", "private_key": NEW_PEM})
    result = _check(env)
    assert result.returncode == 0, result.stderr
    # try-restart: a dashboard an operator stopped stays stopped.
    assert systemctl.read_text().split("\n")[:-1] == ["try-restart mdp-dashboard.service"]
    assert "holds a new key" in result.stdout and ARN in result.stdout
    assert "MIIE" not in result.stdout + result.stderr


def test_a_secret_without_a_key_keeps_the_dashboard_on_its_key(tmp_path: Path) -> None:
    env, systemctl = _host(tmp_path, {"user": "DEV_DASHBOARD_SVC", "private_key": "oops"})
    result = _check(env)
    assert result.returncode == 1
    assert "holds no PKCS#8 private key" in result.stderr and ARN in result.stderr
    assert "keeps the key it runs with" in result.stderr
    assert not systemctl.exists()


def _runs_the_check(user_data: str) -> None:
    doc = yaml.safe_load(user_data)
    files = {f["path"]: f for f in doc["write_files"]}
    script = files[f"/usr/local/bin/{DASHBOARD_KEY_CHECK}"]
    assert script["content"] == SCRIPT.read_text() and script["permissions"] == "0755"
    service = files[f"/etc/systemd/system/{DASHBOARD_KEY_CHECK}.service"]["content"]
    assert f"ExecStart=/usr/local/bin/{DASHBOARD_KEY_CHECK}" in service
    assert "EnvironmentFile=/etc/mdp/dashboard.env" in service
    timer = files[f"/etc/systemd/system/{DASHBOARD_KEY_CHECK}.timer"]["content"]
    assert "OnUnitActiveSec=10min" in timer
    runcmd = doc["runcmd"]
    enable = ["systemctl", "enable", "--now", f"{DASHBOARD_KEY_CHECK}.timer"]
    assert enable in runcmd
    assert runcmd.index(enable) > runcmd.index(
        ["systemctl", "enable", "--now", "mdp-dashboard.service"]
    )


def test_both_dashboard_hosts_run_the_check_and_a_host_without_a_dashboard_does_not() -> None:
    airflow = AirflowBoot("dev", "us-east-1", "bucket", "/mdp/dev/artifact", "mdp/dev/airflow/connections",
                          "mdp/dev/airflow/variables", "9.0.0", dashboard=DASHBOARD)  # fmt: skip
    _runs_the_check(render_airflow(airflow))
    _runs_the_check(
        render_dashboard(
            DashboardHostBoot("prod", "us-east-1", "bucket", "/mdp/prod/artifact", DASHBOARD)
        )
    )
    without = render_airflow(dataclasses.replace(airflow, dashboard=None))
    assert DASHBOARD_KEY_CHECK not in without


@pytest.mark.parametrize("unit", [f"{DASHBOARD_KEY_CHECK}.service", f"{DASHBOARD_KEY_CHECK}.timer"])
def test_the_check_units_pass_systemd_verification(tmp_path: Path, unit: str) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for name in (f"{DASHBOARD_KEY_CHECK}.service", f"{DASHBOARD_KEY_CHECK}.timer"):
        (tmp_path / name).write_text((FILES / name).read_text())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
    )
    # Paths that exist only on the host (the script, the env files) are not syntax errors.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if DASHBOARD_KEY_CHECK in line
        and "is not executable" not in line
        and "No such file" not in line
        and "Command " not in line
    ]
    assert problems == []
