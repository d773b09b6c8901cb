"""The hosts' IAM: the EC2 trust policy, the SSM agent's actions, and each host's least-privilege policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import assume_role_policy, policy_document

# What the SSM agent needs for Session Manager. AmazonSSMManagedInstanceCore would also grant
# ssm:GetParameter(s) on every parameter in the account, so the hosts get only these.
SSM_AGENT_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
# The only prefix of the exports bucket the Airflow role may write.
EXPORTS_PREFIX = "exports"


def instance_profile(
    owner: pulumi.Resource, name: str, policy: pulumi.Input[str]
) -> tuple[aws.iam.InstanceProfile, pulumi.Output[str]]:
    """A role with the SSM agent's actions and `policy`, as an instance profile; and the role's ARN."""
    child = pulumi.ResourceOptions(parent=owner)
    role = aws.iam.Role(
        f"{name}-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"), opts=child
    )
    aws.iam.RolePolicy(f"{name}-ssm-agent", role=role.id, policy=_ssm_agent_policy(), opts=child)
    aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
    profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)
    return profile, role.arn


def generator_policy(
    region: str,
    master_secret_arn: str,
    replication_secret_arn: str,
    key_arn: str,
    artifact_bucket_arn: str,
    parameter_arn: str,
) -> str:
    """The generator reads the two database secrets and the artifacts, nothing else."""
    return policy_document(
        read_secrets("ReadDatabaseSecrets", [master_secret_arn, replication_secret_arn]),
        _kms_via(region, key_arn, ["secretsmanager", "s3"]),
        *_artifact_read(artifact_bucket_arn, parameter_arn),
    )


def airflow_policy(
    region: str,
    key_arn: str,
    artifact_bucket_arn: str,
    parameter_arn: str,
    exports_bucket_arn: str,
    secret_arns: list[str],
    dashboard_key_arn: str = "",
    alerts_topic_arn: str = "",
) -> str:
    """Airflow reads its own secrets and the artifacts, writes the exports prefix only, and
    publishes the DAG's alerts to the stack's topic."""
    # Writing exports to the KMS-encrypted bucket, or to the encrypted topic, needs data keys.
    kms_services = ["secretsmanager", "s3", *(["sns"] if alerts_topic_arn else [])]
    statements: list[dict[str, Any]] = [
        _kms_via(region, key_arn, kms_services, write=True),
        *_artifact_read(artifact_bucket_arn, parameter_arn),
        *exports_access(exports_bucket_arn),
    ]
    if secret_arns:
        statements.append(read_secrets("ReadAirflowSecrets", secret_arns))
    statements.append(
        {
            # The CloudWatch agent's root-disk metric; PutMetricData takes no resource ARN, so
            # the namespace condition is what scopes it.
            "Sid": "PublishDiskMetric",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "CWAgent"}},
        }
    )
    if alerts_topic_arn:
        statements.append(publish_alerts(alerts_topic_arn))
    if dashboard_key_arn:
        statements.append(_dashboard_key(dashboard_key_arn))
    return policy_document(*statements)


def dashboard_policy(
    region: str, key_arn: str, artifact_bucket_arn: str, parameter_arn: str, dashboard_key_arn: str
) -> str:
    """The dashboard host reads the artifacts and the dashboard's Snowflake key, nothing else."""
    return policy_document(
        _kms_via(region, key_arn, ["secretsmanager", "s3"]),
        *_artifact_read(artifact_bucket_arn, parameter_arn),
        _dashboard_key(dashboard_key_arn),
    )


def exports_access(exports_bucket_arn: str) -> list[dict[str, Any]]:
    """The DAG's export task, on either engine: read, write and list the exports prefix only."""
    return [
        {
            "Sid": "WriteParquetExports",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": f"{exports_bucket_arn}/{EXPORTS_PREFIX}/*",
        },
        {
            "Sid": "ListParquetExports",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": exports_bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{EXPORTS_PREFIX}/*"]}},
        },
    ]


def read_secrets(sid: str, arns: str | list[str]) -> dict[str, Any]:
    """Read the values of the secrets `arns`, and no other."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": arns,
    }


def publish_alerts(topic_arn: str) -> dict[str, Any]:
    """Publish the DAG's alerts to the stack's topic."""
    return {
        "Sid": "PublishDagAlerts",
        "Effect": "Allow",
        "Action": "sns:Publish",
        "Resource": topic_arn,
    }


def _dashboard_key(arn: str) -> dict[str, Any]:
    # The dashboard's Snowflake key, fetched into /run at each start of its unit.
    return read_secrets("ReadDashboardKey", arn)


def _ssm_agent_policy() -> str:
    # These actions take no resource ARNs; none of them reads data.
    return policy_document(
        {
            "Sid": "SessionManagerAgent",
            "Effect": "Allow",
            "Action": list(SSM_AGENT_ACTIONS),
            "Resource": "*",
        }
    )


def _kms_via(
    region: str, key_arn: str, services: Sequence[str], write: bool = False
) -> dict[str, Any]:
    # The key works only on behalf of the named services, never for direct kms:Decrypt calls.
    return {
        "Sid": "UseKeyThroughServices",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if write else "kms:Decrypt",
        "Resource": key_arn,
        "Condition": {
            "StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}
        },
    }


def _artifact_read(bucket_arn: str, parameter_arn: str) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "ReadArtifacts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/artifacts/*",
        },
        {
            "Sid": "ReadArtifactPointer",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": parameter_arn,
        },
    ]
