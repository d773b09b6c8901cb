"""One rehearsal of a stack: emulator up, declared resources applied, each host booted, a report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra import outputs
from infra.mockrun import ProgramRun, run_program
from rehearsal.airflow import rehearse_airflow
from rehearsal.apply import INSTANCE, apply
from rehearsal.dashboard import rehearse_dashboard
from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator
from rehearsal.generator import rehearse_generator
from rehearsal.hosts import HostRun
from rehearsal.mwaa import ENVIRONMENT as MWAA_ENVIRONMENT
from rehearsal.mwaa import rehearse_mwaa
from rehearsal.report import Report
from rehearsal.sandbox import missing_tools

if TYPE_CHECKING:
    from rehearsal.standins import CloudStandIns

# Every EC2 host the program can declare: the Airflow host with engine ec2, the dashboard host
# with engine mwaa and a Snowflake dashboard user.
HOSTS = ("generator", "airflow", "dashboard")
# Airflow on Amazon MWAA (engine `mwaa`), rehearsed as far as it runs here.
ENGINE = "mwaa"


# Example Airbyte Cloud settings (docs/airbyte.md): a made-up workspace and client.
EXAMPLE_AIRBYTE = {"workspaceId": "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"}
EXAMPLE_AIRBYTE_CLIENT_ID = "rehearsal-client-id"
EXAMPLE_AIRBYTE_SECRET = {"airbyte:clientSecret": "rehearsal-client-secret-4f1d"}


def example_snowflake(stack: str) -> dict[str, Any]:
    """An `mdp:snowflake` section as docs/snowflake.md sets it up, for a made-up account."""
    section: dict[str, Any] = {
        "organizationName": "EXAMPLEORG",
        "accountName": "MDP",
        "creditQuota": 20 if stack == "dev" else 60,
        # A documentation address (RFC 5737) stands in for the Airflow host's.
        "dbtAllowedCidrs": ["203.0.113.10/32"],
    }
    if stack != "prod":
        section["namePrefix"] = f"{stack.upper()}_"
    return section


def program_run(stack: str, with_cloud: bool = False) -> ProgramRun:
    """The stack's program under mocks, with its committed config.

    `with_cloud` adds example Snowflake and Airbyte Cloud sections, as a user who connected both
    has them: Airflow then gets the connections and variable its daily run needs. No account is
    reached; the rehearsal serves both from stand-ins.
    """
    if not with_cloud:
        return run_program(stack)
    return run_program(
        stack,
        overrides={
            "mdp:snowflake": example_snowflake(stack),
            "mdp:airbyte": EXAMPLE_AIRBYTE,
            "airbyte:clientId": EXAMPLE_AIRBYTE_CLIENT_ID,
        },
        secrets=EXAMPLE_AIRBYTE_SECRET,
    )


def declared_hosts(run: ProgramRun) -> list[str]:
    """The hosts of HOSTS that this run declares an instance for, in boot order."""
    instances = {r.name for r in run.of_type(INSTANCE)}
    return [h for h in HOSTS if f"{h}-instance" in instances]


def rehearse(
    stack: str,
    run: ProgramRun | None = None,
    hosts: Sequence[str] | None = None,
    emulator: Emulator | None = None,
    database: StandInDatabase | None = None,
    hosts_root: Path | None = None,
    services: bool = True,
    cloud: CloudStandIns | None = None,
) -> Report:
    """Rehearse `stack`; `run` (the program's recorded run) may be given, for example altered.

    An emulator or database passed in is reused (and left running); otherwise each is started
    here and stopped at the end. The hosts' sandbox roots are temporary, unless `hosts_root`
    names a folder that keeps them: a later rehearsal with the same folder boots the same
    machines again, which keep their deployed release (/opt/mdp), as a rebooted host does.
    `hosts` defaults to every host the stack declares; a host it does not declare is listed as
    not rehearsed, with the reason. With `services` False, long-running units run their
    ExecStartPre only, and their ExecStart is listed as not rehearsed: for a rehearsal aimed at
    one wire, on a machine whose services an earlier rehearsal brought up. `cloud`, Snowflake's
    and Airbyte's stand-ins, serves the Airflow host's daily run (left running); without it, that
    run starts its own.
    """
    run = run or program_run(stack)
    report = Report(stack)
    own_emulator = emulator is None
    own_database = database is None
    region = str(run.config.get("aws:region") or "us-east-1")
    missing = missing_tools()
    if missing:
        report.failed(
            "machine",
            "the hosts' tools",
            f"this machine lacks {', '.join(missing)}, which the hosts' scripts call; "
            "run `make system-deps` (or install them), then rehearse again",
            "the image's packages",
            "scripts/system-deps.sh",
        )
        return report
    root = hosts_root / stack if hosts_root else Path(tempfile.mkdtemp(prefix="mdp-rehearsal-"))
    try:
        emulator = emulator or Emulator(region).start()
        if not own_emulator:
            emulator.reset()
        applied = apply(run, emulator)
        report.ok(
            "aws",
            "apply the declared resources to the emulator",
            f"{len(applied.created)} resources (KMS, S3 + artifact, SSM, Secrets Manager, IAM)"
            + (
                "; MWAA's bundle: "
                + ", ".join(
                    k for k in applied.objects if k != run.outputs.get(outputs.ARTIFACT_KEY)
                )
                if run.of_type(MWAA_ENVIRONMENT)
                else ""
            ),
        )
        report.skipped(
            "aws",
            "bucket policies (TLS only)",
            "the emulator serves plain HTTP on loopback and evaluates identity policies only",
        )
        declared = declared_hosts(run)
        for host in declared if hosts is None else [h for h in hosts if h != ENGINE]:
            if host not in declared:
                report.skipped(host, "boot the host", _why_undeclared(run, host))
                continue
            host_run = HostRun(host, run, applied, emulator, report, root / host, services=services)
            if host == "dashboard":
                rehearse_dashboard(host_run)
                continue
            # RDS for the generator; the Airflow host's own PostgreSQL for its metadata.
            database = database or StandInDatabase().start()
            if host == "generator":
                rehearse_generator(host_run, database)
            else:
                rehearse_airflow(host_run, database, cloud)
        if run.of_type(MWAA_ENVIRONMENT):
            if hosts is None or ENGINE in hosts:
                rehearse_mwaa(run, applied, emulator, report, root)
            else:
                report.skipped(ENGINE, "Amazon MWAA environment", "not selected (--host)")
        elif hosts is not None and ENGINE in hosts:
            report.skipped(
                ENGINE,
                "Amazon MWAA environment",
                "the stack declares no MWAA environment: Airflow runs on its own host "
                "(aws.airflow.engine ec2)",
            )
    finally:
        if own_emulator and emulator is not None:
            emulator.stop()
        if own_database and database is not None:
            database.stop()
        if hosts_root is None:
            shutil.rmtree(root, ignore_errors=True)
    return report


def _why_undeclared(run: ProgramRun, host: str) -> str:
    if host == "airflow" and run.of_type(MWAA_ENVIRONMENT):
        return (
            "the stack declares no Airflow host: Airflow runs on Amazon MWAA (aws.airflow.engine)"
        )
    if host == "dashboard":
        return (
            "the stack declares no dashboard host: the Airflow host serves the dashboard "
            "(engine ec2), or Snowflake has no dashboard user"
        )
    return f"the stack declares no {host} host"
