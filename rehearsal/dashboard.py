"""MWAA's dashboard host: the artifact from S3 and the dashboard's key from Secrets Manager."""

from __future__ import annotations

from infra import outputs
from rehearsal.airflow import (
    DASHBOARD_ENV,
    DASHBOARD_HEALTH,
    DASHBOARD_START_HINT,
    HOST_ENV,
    check_dashboard_key,
)
from rehearsal.hosts import HostRun, written_files
from rehearsal.sandbox import read_env_file
from rehearsal.wires import DASHBOARD_HOST_WIRES


def rehearse_dashboard(host: HostRun) -> None:
    host.check_wires(DASHBOARD_HOST_WIRES)
    files = written_files(host.user_data)
    _hints(host, read_env_file(files[HOST_ENV]))
    host.health = dict(DASHBOARD_HEALTH)
    box = host.boot()
    if box is None:
        return
    if host.runcmd():
        check_dashboard_key(host, files)


def _hints(host: HostRun, env: dict[str, str]) -> None:
    policy = host.policy_name
    host.hints = [
        (
            r"ssm:GetParameter|GetParameter operation",
            f"{HOST_ENV} MDP_ARTIFACT_PARAMETER → ssm:GetParameter",
            f"parameter {env.get('MDP_ARTIFACT_PARAMETER')} and policy {policy} (ReadArtifactPointer)",
        ),
        (
            r"s3:GetObject|HeadObject operation|GetObject operation|s3 cp",
            f"{HOST_ENV} MDP_ARTIFACT_BUCKET → s3:GetObject on artifacts/*",
            f"bucket {env.get('MDP_ARTIFACT_BUCKET')} (output {outputs.ARTIFACT_BUCKET}) "
            f"and policy {policy} (ReadArtifacts)",
        ),
        (
            r"mdp-dashboard-key",
            f"{DASHBOARD_ENV} MDP_DASHBOARD_KEY_SECRET_ARN → secretsmanager:GetSecretValue",
            f"output {outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN} and policy {policy} (ReadDashboardKey)",
        ),
        DASHBOARD_START_HINT,
    ]
