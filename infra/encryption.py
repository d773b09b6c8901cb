"""One customer-managed KMS key per stack for RDS, EBS, secrets, logs and buckets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.component import Component
from infra.iam import account_root, policy_document
from infra.sections import StackName


@dataclass(frozen=True)
class EncryptionKeyArgs:
    stack: StackName
    region: str
    deletion_window_days: int = 30
    protect: bool = False


class EncryptionKey(Component[EncryptionKeyArgs]):
    """A rotating KMS key whose policy lets CloudWatch Logs encrypt the stack's log groups, and alarms and budgets publish to the alert topic."""

    TYPE = "mdp:encryption:EncryptionKey"

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def _declare(self, name: str, args: EncryptionKeyArgs) -> Mapping[str, Any]:
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        self._key = aws.kms.Key(
            f"{name}-key",
            description=f"mdp {args.stack}: RDS, EBS, Secrets Manager, S3 and CloudWatch Logs",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=account_id.apply(lambda acct: _key_policy(acct, args.region)),
            # Losing the key loses every snapshot, secret and object encrypted with it.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/mdp-{args.stack}",
            target_key_id=self._key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = self._key.arn
        self.key_id = self._key.key_id
        return {"keyArn": self.key_arn, "keyId": self.key_id}


def _key_policy(account_id: str, region: str) -> str:
    # The account root delegates to IAM; only CloudWatch Logs needs a service grant in the key policy.
    return policy_document(
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": account_root(account_id),
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:aws:logs:{region}:{account_id}:log-group:*"
                    )
                }
            },
        },
        {
            # Alarms and Budgets publish to the stack's encrypted alert topic.
            "Sid": "AlarmsAndBudgetsPublishToTheAlertTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    )
