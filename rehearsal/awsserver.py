"""The AWS emulator process: moto in server mode on 127.0.0.1, every call checked against IAM.

Run as `python -m rehearsal.awsserver --port N`; it prints one JSON line with the credentials of
three principals, then serves until it is stopped:

- `admin`: stands in for the deploy role that `pulumi up` runs as (all actions);
- `ec2`: stands in for the EC2 service, the only principal the hosts' trust policies admit. A host
  gets its credentials by assuming its own role as this principal, as EC2 does for an instance
  profile, so the role's trust policy and its permissions are both checked;
- `mwaa`: stands in for Amazon MWAA (`airflow-env.amazonaws.com`), which assumes an
  environment's execution role in the same way.

Moto checks Secrets Manager and SSM calls against `Resource: "*"` only; here each call is checked
against the ARN it names, as AWS does, so a policy that lists the wrong secret is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.access_control import IAMRequestBase
from moto.iam.models import iam_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.secretsmanager.exceptions import SecretNotFoundException
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.ssm.responses import SimpleSystemManagerResponse

ADMIN_USER = "rehearsal-deployer"
EC2_USER = "rehearsal-ec2-service"
MWAA_USER = "rehearsal-mwaa-service"
# The service each stand-in user acts as, in a trust policy's `Principal.Service`.
SERVICES = {EC2_USER: "ec2.amazonaws.com", MWAA_USER: "airflow-env.amazonaws.com"}
_ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
_ASSUME_ANY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
)


def _secret_resource(self: SecretsManagerResponse) -> str:
    """The ARN of the secret a Secrets Manager call names (its id as given when there is none)."""
    secret_id = self._get_param("SecretId") or ""
    try:
        return str(self.backend.describe_secret(secret_id).arn)
    except SecretNotFoundException:
        return secret_id if secret_id.startswith("arn:") else "*"
    except Exception:
        return "*"


def _parameter_resource(self: SimpleSystemManagerResponse) -> str:
    """The ARN of the parameter an SSM call names."""
    name = self._get_param("Name")
    if not name:
        return "*"
    if name.startswith("arn:"):
        return str(name)
    path = name if name.startswith("/") else f"/{name}"
    return f"arn:aws:ssm:{self.region}:{self.current_account}:parameter{path}"


def _trust_admits(self: IAMRequestBase, role_arn: str) -> bool:
    """The role's trust policy admits the caller: a service (through its stand-in) or an AWS principal."""
    role = self.backend.get_role_by_arn(role_arn)
    policy = json.loads(role.assume_role_policy_document)
    statements = policy["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    caller = self._access_key.arn
    service = SERVICES.get(caller.rpartition(":user/")[2])
    for statement in statements:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in actions:
            continue
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = services if isinstance(services, list) else [services]
        aws_principals = principal.get("AWS", []) if isinstance(principal, dict) else []
        aws_principals = aws_principals if isinstance(aws_principals, list) else [aws_principals]
        if service is not None and service in services:
            return True
        if service is None and (caller in aws_principals or "*" in aws_principals):
            return True
    return False


def _patch() -> None:
    SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
    SimpleSystemManagerResponse._determine_resource = _parameter_resource  # type: ignore[attr-defined]
    IAMRequestBase._check_role_trust_relationship = _trust_admits  # type: ignore[method-assign]


def _principal(name: str, policy: str) -> dict[str, str]:
    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_user("us-east-1", name, path="/")
    backend.put_user_policy(name, "all", policy)
    key = backend.create_access_key(name)
    return {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _patch()
    # One log line per request would drown the rehearsal's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # From the first request on, every call must be signed by a known principal and permitted.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    try:
        print(json.dumps(_bootstrap()), flush=True)
        # Each line on stdin asks for a fresh account (all state gone); EOF stops the server.
        for line in sys.stdin:
            if line.strip() == "reset":
                moto_api_backend.reset()
                print(json.dumps(_bootstrap()), flush=True)
    finally:
        server.stop()


def _bootstrap() -> dict[str, Any]:
    return {
        "admin": _principal(ADMIN_USER, _ALLOW_ALL),
        "ec2": _principal(EC2_USER, _ASSUME_ANY),
        "mwaa": _principal(MWAA_USER, _ASSUME_ANY),
        "account": DEFAULT_ACCOUNT_ID,
    }


if __name__ == "__main__":
    main()
