"""MWAA's execution role: the permissions AWS documents for an environment, scoped to this one."""

from __future__ import annotations

from typing import Any

from infra.hosts.iam import exports_access, publish_alerts, read_secrets
from infra.iam import policy_document

# MWAA names its log groups airflow-<environment>-<kind>; these are the five kinds.
LOG_KINDS: tuple[str, ...] = ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker")


def assume_mwaa() -> str:
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    )


def execution_policy(
    region: str,
    account_id: str,
    environment: str,
    key_arn: str,
    source_bucket_arn: str,
    exports_bucket_arn: str,
    secret_arns: list[str],
    alerts_topic_arn: str = "",
) -> str:
    """Least privilege for one environment: its metrics, logs, bucket, queues, key and secrets,
    and publishing the DAG's alerts to the stack's topic."""
    log_groups = f"arn:aws:logs:{region}:{account_id}:log-group:airflow-{environment}-*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PublishMetricsOfThisEnvironment",
            "Effect": "Allow",
            "Action": "airflow:PublishMetrics",
            "Resource": f"arn:aws:airflow:{region}:{account_id}:environment/{environment}",
        },
        {
            "Sid": "ReadSourceBucket",
            "Effect": "Allow",
            "Action": ["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
            "Resource": [source_bucket_arn, f"{source_bucket_arn}/*"],
        },
        {
            "Sid": "WriteOwnLogGroups",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogStream",
                "logs:CreateLogGroup",
                "logs:PutLogEvents",
                "logs:GetLogEvents",
                "logs:GetLogRecord",
                "logs:GetLogGroupFields",
                "logs:GetQueryResults",
            ],
            "Resource": [log_groups, f"{log_groups}:*"],
        },
        {
            # Both take no resource ARN (AWS documents them on "*" for every environment).
            "Sid": "DescribeLogGroupsAndPutMetrics",
            "Effect": "Allow",
            "Action": ["logs:DescribeLogGroups", "cloudwatch:PutMetricData"],
            "Resource": "*",
        },
        {
            "Sid": "CeleryQueues",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            "Resource": f"arn:aws:sqs:{region}:*:airflow-celery-*",
        },
        {
            # The stack's key, only on behalf of the services MWAA uses it through.
            "Sid": "UseKeyThroughServices",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
            "Resource": key_arn,
            "Condition": {
                "StringLike": {
                    "kms:ViaService": [
                        f"sqs.{region}.amazonaws.com",
                        f"s3.{region}.amazonaws.com",
                        f"secretsmanager.{region}.amazonaws.com",
                        # The alert topic is encrypted with the stack's key.
                        *([f"sns.{region}.amazonaws.com"] if alerts_topic_arn else []),
                    ]
                }
            },
        },
        # The DAG's export task, as on the EC2 host.
        *exports_access(exports_bucket_arn),
    ]
    if secret_arns:
        statements.append(read_secrets("ReadAirflowSecrets", sorted(secret_arns)))
    if alerts_topic_arn:
        # The DAG's SNS notifier signs with the execution role (no AWS connection).
        statements.append(publish_alerts(alerts_topic_arn))
    return policy_document(*statements)
