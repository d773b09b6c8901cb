"""A Secrets Manager secret and its value, encrypted with the stack's key."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def stored_secret(
    resource: str,
    *,
    name: str,
    description: str,
    value: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str],
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.secretsmanager.Secret:
    """The secret `name` holding `value` (resource `resource`, its version `<resource>-value`).

    A protected stack keeps a deleted secret for 30 days, the longest AWS allows; others for 7.
    """
    secret = aws.secretsmanager.Secret(
        resource,
        name=name,
        description=description,
        kms_key_id=kms_key_arn,
        recovery_window_in_days=30 if protect else 7,
        opts=opts,
    )
    aws.secretsmanager.SecretVersion(
        f"{resource}-value", secret_id=secret.id, secret_string=value, opts=opts
    )
    return secret
