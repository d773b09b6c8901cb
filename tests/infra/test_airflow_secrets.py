"""The Airflow host with connections from other components: one secret each, readable by Airflow only."""

from __future__ import annotations

import json
import shlex

import pulumi
import yaml
from pulumi.runtime import settings as pulumi_settings

from infra.hosts import AirflowHost, AirflowHostArgs, AirflowSettings, HostCommon
from infra.mockrun import RecordingMocks, RecordingMonitor, sync_run

SNOWFLAKE_JSON = json.dumps({"conn_type": "snowflake", "password": "MOCKSECRET-snowflake-key"})


def test_connections_become_secret_backend_entries_only_airflow_reads() -> None:
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="mdp", stack="dev", preview=False, monitor=monitor)
    seen: dict[str, object] = {}

    async def program() -> None:
        host = AirflowHost(
            "airflow",
            AirflowHostArgs(
                common=HostCommon(
                    stack="dev",
                    region="us-east-1",
                    vpc_id="vpc-1",
                    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                    artifact_bucket="artifacts",
                    artifact_bucket_arn="arn:aws:s3:::artifacts",
                    artifact_parameter_name="/mdp/dev/artifact-key",
                    artifact_parameter_arn="arn:aws:ssm:us-east-1:123456789012:parameter/mdp/dev/artifact-key",
                    protect=False,
                ),
                subnet_id="subnet-1",
                public_ip=True,
                settings=AirflowSettings.model_validate({}),
                exports_bucket_arn="arn:aws:s3:::exports",
                connections={"snowflake_dbt": pulumi.Output.secret(SNOWFLAKE_JSON)},
                variables={"mdp_airbyte_connection_id": "conn-123"},
            ),
        )
        seen["arns"] = await host.secret_arns.future()

    sync_run(program)
    recorded = monitor.recorded
    secrets = {r.props["name"]: r for r in recorded if r.type == "aws:secretsmanager/secret:Secret"}
    assert set(secrets) == {
        "mdp/dev/airflow/connections/snowflake_dbt",
        "mdp/dev/airflow/variables/mdp_airbyte_connection_id",
    }
    assert all(s.props["kmsKeyId"] for s in secrets.values())
    values = [r for r in recorded if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    connection_value = next(v for v in values if v.plain["secretString"] == SNOWFLAKE_JSON)
    assert "secretString" in connection_value.secret_inputs
    policy = json.loads(next(r for r in recorded if r.name == "airflow-policy").props["policy"])
    reads = next(s for s in policy["Statement"] if s["Action"] == "secretsmanager:GetSecretValue")
    assert sorted(reads["Resource"]) == sorted(seen["arns"])  # type: ignore[arg-type]
    user_data = next(r for r in recorded if r.type == "aws:ec2/instance:Instance").props["userData"]
    assert "MOCKSECRET" not in user_data
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}
    line = next(
        x
        for x in files["/etc/mdp/airflow.env"].splitlines()
        if x.startswith("AIRFLOW__SECRETS__BACKEND_KWARGS=")
    )
    kwargs = json.loads(shlex.split(line.split("=", 1)[1])[0])
    assert kwargs["connections_lookup_pattern"] == "^(snowflake_dbt)$"
    assert kwargs["variables_lookup_pattern"] == "^(mdp_airbyte_connection_id)$"
