"""IAM policy documents as the program writes them: JSON text in the 2012-10-17 language."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def policy_document(*statements: Mapping[str, Any]) -> str:
    """A policy of `statements`, in their order."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def account_root(account_id: str) -> dict[str, str]:
    """The principal of the account itself: its root, which delegates to IAM."""
    return {"AWS": f"arn:aws:iam::{account_id}:root"}


def assume_role_policy(service: str) -> str:
    """The trust policy of a role that `service` assumes."""
    return policy_document(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )
