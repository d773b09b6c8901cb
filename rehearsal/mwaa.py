"""Amazon MWAA as far as it runs here: its execution role, its bundle, its startup script, and
what its components do with AWS (secrets, exports), each call checked against the role's policy.

The emulator has no MWAA, so nothing schedules or runs the DAG here. What MWAA does with the
stack's resources before and while it runs Airflow does run: the service assumes the execution
role; the bundle's objects are fetched from the source bucket at the versions the environment
names, with that role; plugins.zip is unpacked where MWAA unpacks it; the startup script runs
as MWAA runs it on a scheduler; and Airflow, configured with the environment's own
configuration options, reads its variables and connections from Secrets Manager and the export
writer writes to the exports bucket, both with the execution role's credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra import outputs
from infra.mockrun import ProgramRun
from infra.mwaa import bundle
from rehearsal.airflow import (
    EXPORT_PROBE,
    SECRETS_PROBE,
    backend_misreads,
    declared_backend_entries,
)
from rehearsal.apply import ROLE_POLICY, Applied
from rehearsal.emulator import Credentials, Emulator
from rehearsal.report import Report

HOST = "mwaa"
ENVIRONMENT = "aws:mwaa/environment:Environment"
# MWAA's service principal in the execution role's trust policy.
SERVICE = "airflow-env.amazonaws.com"
_TIMEOUT_S = 300
# What MWAA runs on each component, and where the project's tests run it instead.
_NOT_HERE = (
    "the emulator has no MWAA: its schedulers, workers and web server, and the requirements "
    "install under Apache's constraints, do not run. tests/orchestration/test_mwaa_airflow.py "
    "installs requirements.txt's pins on MWAA's Airflow version, parses the bundle's DAG and "
    "runs a day of it"
)


class _Failed(Exception):
    def __init__(self, step: str, detail: str, wire: str, behind: str) -> None:
        super().__init__(detail)
        self.step, self.detail, self.wire, self.behind = step, detail, wire, behind


class MwaaRun:
    """One rehearsal of the stack's MWAA environment, its steps reported under `mwaa`."""

    def __init__(
        self, run: ProgramRun, applied: Applied, emulator: Emulator, report: Report, root: Path
    ) -> None:
        self.run, self.applied, self.emulator, self.report = run, applied, emulator, report
        self.env: dict[str, Any] = dict(run.one(ENVIRONMENT).plain)
        self.role = str(self.env["executionRoleArn"]).rsplit("/", 1)[-1]
        self.policies = [
            r.name for r in run.of_type(ROLE_POLICY) if str(r.plain.get("role")) == self.role
        ]
        # Stands in for MWAA's /usr/local/airflow, where it lays the bundle out.
        self.home = root / bundle.AIRFLOW_HOME.lstrip("/")

    def behind(self, sid: str) -> str:
        return f"policy {', '.join(self.policies) or '(none)'} ({sid}) of role {self.role}"

    def rehearse(self) -> None:
        try:
            credentials = self.assume()
            self.fetch_bundle(credentials)
            startup = self.run_startup_script()
            self.check_secrets(credentials)
            self.check_exports(credentials, startup)
        except _Failed as failure:
            self.report.failed(HOST, failure.step, failure.detail, failure.wire, failure.behind)
        finally:
            self.report.skipped(
                HOST, "Amazon MWAA environment: Airflow on MWAA's components", _NOT_HERE
            )

    def assume(self) -> Credentials:
        step = f"execution role: assumed by MWAA ({SERVICE})"
        arn = f"arn:aws:iam::{self.emulator.account}:role/{self.role}"
        try:
            credentials = self.emulator.assume(arn, f"mwaa-{self.env['name']}", self.emulator.mwaa)
        except ClientError as err:
            raise _Failed(
                step,
                str(err),
                f"the environment's executionRoleArn → sts:AssumeRole by {SERVICE}",
                f"the trust policy of role {self.role}",
            ) from err
        self.report.ok(HOST, step, self.role)
        return credentials

    def fetch_bundle(self, credentials: Credentials) -> None:
        """Each object the environment names, at its version, with the execution role."""
        step = "bundle: fetched from the source bucket at the declared versions, unpacked"
        s3 = self.emulator.client("s3", credentials)
        bucket = str(self.applied.resolve(self.env["sourceBucketArn"])).removeprefix(
            "arn:aws:s3:::"
        )
        fetched: list[str] = []
        try:
            prefix = str(self.env["dagS3Path"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    self._write(obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"]))
                    fetched.append(obj["Key"])
            for path, version in (
                ("pluginsS3Path", "pluginsS3ObjectVersion"),
                ("requirementsS3Path", "requirementsS3ObjectVersion"),
                ("startupScriptS3Path", "startupScriptS3ObjectVersion"),
            ):
                key, version_id = str(self.env[path]), str(self.applied.resolve(self.env[version]))
                self._write(key, s3.get_object(Bucket=bucket, Key=key, VersionId=version_id))
                fetched.append(f"{key}@{version_id[:8]}")
        except ClientError as err:
            raise _Failed(
                step,
                f"{' '.join(fetched) or 'nothing'} fetched, then: {err}",
                "the environment's sourceBucketArn and object versions → s3:GetObject with the "
                "execution role",
                f"bucket {bucket} and {self.behind('ReadSourceBucket')}",
            ) from err
        plugins = self.home / "plugins"
        with zipfile.ZipFile(self.home / str(self.env["pluginsS3Path"])) as zf:
            zf.extractall(plugins)
            members = len(zf.namelist())
        self.report.ok(HOST, step, f"{', '.join(fetched)}; plugins.zip: {members} files")
        manifest = plugins / bundle.MANIFEST
        if not manifest.is_file():
            self.report.skipped(
                HOST,
                "dbt manifest in plugins.zip",
                f"this checkout has no {bundle.MANIFEST}: the deploy workflow builds it "
                "(make dbt-manifest) before `pulumi up`, and without it MWAA cannot render the DAG",
            )

    def _write(self, key: str, response: dict[str, Any]) -> None:
        target = self.home / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response["Body"].read())

    def run_startup_script(self) -> dict[str, str]:
        """startup.sh as MWAA runs it before a scheduler starts; what it exports."""
        step = "startup.sh: run as on a scheduler, exports the DAG's settings"
        script = self.home / str(self.env["startupScriptS3Path"])
        # Only MWAA's home folder moves to the stand-in.
        script.write_text(script.read_text().replace(bundle.AIRFLOW_HOME, str(self.home)))
        shell = shutil.which("sh") or "/bin/sh"
        result = subprocess.run(
            [shell, "-c", f'. "{script}" && env -0'],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MWAA_AIRFLOW_COMPONENT": "scheduler",
            },
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise _Failed(
                step,
                result.stderr.decode(errors="replace").strip()[-500:],
                "startup.sh (the environment's startupScriptS3Path)",
                "infra/mwaa/bundle.py startup_script",
            )
        pairs = (x.split("=", 1) for x in result.stdout.decode().split("\0") if "=" in x)
        exported = {k: v for k, v in pairs if k.startswith("MDP_")}
        exports_bucket = str(self.run.outputs.get(outputs.EXPORTS_BUCKET, ""))
        wrong = []
        if exported.get("MDP_STACK") != self.run.stack:
            wrong.append(f"MDP_STACK={exported.get('MDP_STACK')}")
        if not exported.get("MDP_EXPORTS_TARGET", "").startswith(f"s3://{exports_bucket}/"):
            wrong.append(
                f"MDP_EXPORTS_TARGET={exported.get('MDP_EXPORTS_TARGET')} (output {outputs.EXPORTS_BUCKET}: {exports_bucket})"
            )
        project = Path(exported.get("MDP_DBT_PROJECT_DIR", ""))
        if not (project / "dbt_project.yml").is_file():
            wrong.append(f"MDP_DBT_PROJECT_DIR={project} holds no dbt project")
        if wrong:
            raise _Failed(
                step,
                "; ".join(wrong),
                "startup.sh exports → the DAG's settings",
                "infra/mwaa/bundle.py startup_script",
            )
        self.report.ok(HOST, step, ", ".join(sorted(exported)))
        self.report.skipped(
            HOST,
            "startup.sh on a worker: dbt's own virtualenv (pip install from PyPI)",
            "not installed here; tests/orchestration/test_mwaa_airflow.py runs the DAG with dbt in "
            "an environment of its own",
        )
        return exported

    def _python_env(self, credentials: Credentials, extra: dict[str, str]) -> dict[str, str]:
        """This machine's Python with the bundle's code first, the role's credentials, MWAA's home."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "AIRFLOW", "MDP_", "PYTHON", "VIRTUAL_ENV"))
        }
        return (
            env
            | self.emulator.host_env(credentials)
            | {
                # The bundle's packages before this checkout's, as MWAA's plugins folder has them.
                "PYTHONPATH": str(self.home / "plugins"),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            }
            | extra
        )

    def _probe(self, step: str, code: str, args: list[str], env: dict[str, str]) -> Any:
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            lines = [x for x in (result.stderr + result.stdout).strip().splitlines() if x.strip()]
            raise _Failed(step, " | ".join(lines[-3:]), "", "")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def check_secrets(self, credentials: Credentials) -> None:
        """Airflow with the environment's configuration options reads every variable and connection."""
        step = "Airflow secrets backend: every variable and connection, with the execution role"
        options = dict(self.env.get("airflowConfigurationOptions") or {})
        kwargs = json.loads(str(options.get("secrets.backend_kwargs", "{}")))
        variables = declared_backend_entries(
            self.run, self.applied, kwargs.get("variables_prefix", "")
        )
        connections = declared_backend_entries(
            self.run, self.applied, kwargs.get("connections_prefix", "")
        )
        want = {"variables": sorted(variables), "connections": sorted(connections)}
        env = self._python_env(
            credentials,
            {
                "AIRFLOW__SECRETS__BACKEND": str(options.get("secrets.backend", "")),
                "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(kwargs),
            },
        )
        try:
            got = self._probe(step, SECRETS_PROBE, [json.dumps(want)], env)
        except _Failed as failure:
            failure.wire = (
                "the environment's secrets.backend(_kwargs) options → secretsmanager:GetSecretValue "
                "with the execution role"
            )
            failure.behind = f"{self.behind('ReadAirflowSecrets')} and the airflow-*-value secrets"
            raise
        wrong = backend_misreads(variables, connections, got)
        if wrong:
            raise _Failed(
                step,
                f"Airflow read other values than the program wrote for {wrong}",
                "the environment's secrets.backend_kwargs → Secrets Manager",
                "the airflow-*-value secret versions",
            )
        self.report.ok(HOST, step, f"{len(variables)} variables, {len(connections)} connections")

    def check_exports(self, credentials: Credentials, startup: dict[str, str]) -> None:
        """The bundle's export writer, with the startup script's target and the execution role."""
        step = "exports: Parquet to the startup script's MDP_EXPORTS_TARGET and read back"
        env = self._python_env(
            credentials,
            {
                "MDP_EXPORTS_TARGET": startup["MDP_EXPORTS_TARGET"],
                "MDP_EXPORTS_S3_ENDPOINT": self.emulator.endpoint,
            },
        )
        try:
            got = self._probe(step, EXPORT_PROBE, [], env)
        except _Failed as failure:
            failure.wire = "startup.sh MDP_EXPORTS_TARGET → s3:PutObject/GetObject on exports/*"
            failure.behind = (
                f"output {outputs.EXPORTS_BUCKET} and {self.behind('WriteParquetExports')}"
            )
            raise
        if not got["equal"]:
            raise _Failed(step, "the Parquet read back differs", "exports", outputs.EXPORTS_BUCKET)
        plugins = self.home / "plugins"
        if not str(got["code"]).startswith(f"{plugins}{os.sep}"):
            raise _Failed(
                step,
                f"the export writer came from {got['code']}, not from plugins.zip",
                "plugins.zip → the components' Python path",
                "infra/mwaa/bundle.py code_files",
            )
        self.report.ok(
            HOST,
            step,
            f"{got['rows']} rows at {got['target']}/rehearsal_probe (a probe table), "
            "written by plugins.zip's export writer",
        )


def rehearse_mwaa(
    run: ProgramRun, applied: Applied, emulator: Emulator, report: Report, root: Path
) -> None:
    """Rehearse the stack's MWAA environment (the stack must declare one)."""
    MwaaRun(run, applied, emulator, report, root / HOST).rehearse()
