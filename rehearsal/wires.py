"""The wires from stack outputs into the hosts: which output each environment-file value must equal.

The hosts read these values from their rendered environment files; operators, CI and docs/aws.md
read the same values from the stack outputs. A value that matches no output, or an output that
is gone, is a broken wire even before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra import outputs


@dataclass(frozen=True)
class Wire:
    file: str
    variable: str
    output: str
    # How the variable holds the output's value: equal, or as the bucket of an s3:// URL.
    form: str = "equal"

    @property
    def label(self) -> str:
        return f"{self.file} {self.variable} ← output {self.output}"

    def holds(self, value: str, output_value: object) -> bool:
        if self.form == "s3-bucket":
            return value.startswith(f"s3://{output_value}/")
        return value == str(output_value)


GENERATOR_WIRES = (
    Wire("/etc/mdp/host.env", "MDP_DB_HOST", outputs.DB_ENDPOINT),
    Wire("/etc/mdp/host.env", "MDP_DB_PORT", outputs.DB_PORT),
    Wire("/etc/mdp/host.env", "MDP_DB_NAME", outputs.DB_NAME),
    Wire("/etc/mdp/host.env", "MDP_DB_SECRET_ARN", outputs.DB_MASTER_SECRET_ARN),
    Wire("/etc/mdp/host.env", "MDP_REPLICATION_SECRET_ARN", outputs.DB_REPLICATION_SECRET_ARN),
    Wire("/etc/mdp/host.env", "MDP_ARTIFACT_BUCKET", outputs.ARTIFACT_BUCKET),
)

# The dashboard's Snowflake sign-in, on whichever host serves it.
DASHBOARD_WIRES = (
    Wire("/etc/mdp/dashboard.env", "MDP_SNOWFLAKE_ACCOUNT", outputs.SNOWFLAKE_ACCOUNT),
    Wire("/etc/mdp/dashboard.env", "MDP_SNOWFLAKE_USER", outputs.SNOWFLAKE_DASHBOARD_USER),
    Wire("/etc/mdp/dashboard.env", "MDP_SNOWFLAKE_ROLE", outputs.SNOWFLAKE_REPORTER_ROLE),
    Wire(
        "/etc/mdp/dashboard.env", "MDP_SNOWFLAKE_WAREHOUSE", outputs.SNOWFLAKE_REPORTING_WAREHOUSE
    ),
    Wire("/etc/mdp/dashboard.env", "MDP_SNOWFLAKE_DATABASE", outputs.SNOWFLAKE_ANALYTICS_DATABASE),
    Wire(
        "/etc/mdp/dashboard.env",
        "MDP_DASHBOARD_KEY_SECRET_ARN",
        outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN,
    ),
)

AIRFLOW_WIRES = (
    Wire("/etc/mdp/host.env", "MDP_ARTIFACT_BUCKET", outputs.ARTIFACT_BUCKET),
    Wire("/etc/mdp/airflow.env", "MDP_EXPORTS_TARGET", outputs.EXPORTS_BUCKET, "s3-bucket"),
    *DASHBOARD_WIRES,
)

# MWAA's dashboard host: the artifact and the dashboard, nothing of Airflow.
DASHBOARD_HOST_WIRES = (
    Wire("/etc/mdp/host.env", "MDP_ARTIFACT_BUCKET", outputs.ARTIFACT_BUCKET),
    *DASHBOARD_WIRES,
)


def artifact_hints(env: Mapping[str, str], policy: str) -> list[tuple[str, str, str]]:
    """A host's hints for the code artifact it fetches: what failed, the wire, what is behind it.

    `env` is the host's /etc/mdp/host.env, `policy` the name of its instance role's policy.
    """
    host_env = "/etc/mdp/host.env"
    return [
        (
            r"ssm:GetParameter|GetParameter operation",
            f"{host_env} MDP_ARTIFACT_PARAMETER → ssm:GetParameter",
            f"parameter {env.get('MDP_ARTIFACT_PARAMETER')} and policy {policy} (ReadArtifactPointer)",
        ),
        (
            r"s3:GetObject|HeadObject operation|GetObject operation|s3 cp",
            f"{host_env} MDP_ARTIFACT_BUCKET → s3:GetObject on artifacts/*",
            f"bucket {env.get('MDP_ARTIFACT_BUCKET')} (output {outputs.ARTIFACT_BUCKET}) "
            f"and policy {policy} (ReadArtifacts)",
        ),
    ]
