"""Starts and stops the AWS emulator (moto with IAM enforcement) on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""

    def env(self) -> dict[str, str]:
        values = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            values["AWS_SESSION_TOKEN"] = self.session_token
        return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """moto in server mode, in its own process; `admin` deploys, `ec2` assumes the hosts' roles,
    `mwaa` an MWAA environment's execution role."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[str] | None = None
        self.admin = Credentials("", "")
        self.ec2 = Credentials("", "")
        self.mwaa = Credentials("", "")
        self.account = ""

    def start(self) -> Emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rehearsal.awsserver", "--port", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._read_principals()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"The AWS emulator did not listen on {self.endpoint}"
                    ) from None
                time.sleep(0.05)
        return self

    def _read_principals(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(
                "The AWS emulator (moto) did not start: see its error above. "
                "Run `make install` so that moto[server] is in the environment."
            )
        data = json.loads(line)
        self.admin = Credentials(**data["admin"])
        self.ec2 = Credentials(**data["ec2"])
        self.mwaa = Credentials(**data["mwaa"])
        self.account = str(data["account"])

    def reset(self) -> None:
        """Forget every resource, as a fresh account: the next rehearsal starts from nothing."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write("reset\n")
        self._process.stdin.flush()
        self._read_principals()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, service: str, credentials: Credentials) -> Any:
        """A boto3 client of `service` against the emulator, signed with `credentials`."""
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token or None,
            config=Config(retries={"max_attempts": 1}),
        )

    def assume(
        self, role_arn: str, session: str, service: Credentials | None = None
    ) -> Credentials:
        """Credentials of `role_arn` as a service hands them out: EC2 (the default) to an
        instance that has its profile, or `mwaa` to an environment's components."""
        sts = self.client("sts", service or self.ec2)
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
        return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    def host_env(self, credentials: Credentials) -> dict[str, str]:
        """The environment a host's `aws` CLI and boto3 see: the emulator's endpoint, these credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            **credentials.env(),
        }
