"""One rehearsal of a stack: emulator up, declared resources applied, each host booted, a report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from infra.mockrun import ProgramRun, run_program
from rehearsal.airflow import rehearse_airflow
from rehearsal.apply import apply
from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator
from rehearsal.generator import rehearse_generator
from rehearsal.hosts import HostRun
from rehearsal.report import Report
from rehearsal.sandbox import missing_tools

HOSTS = ("generator", "airflow")


def program_run(stack: str) -> ProgramRun:
    """The stack's program under mocks, with its committed config."""
    return run_program(stack)


def rehearse(
    stack: str,
    run: ProgramRun | None = None,
    hosts: Sequence[str] = HOSTS,
    emulator: Emulator | None = None,
    database: StandInDatabase | None = None,
    hosts_root: Path | None = None,
) -> Report:
    """Rehearse `stack`; `run` (the program's recorded run) may be given, for example altered.

    An emulator or database passed in is reused (and left running); otherwise each is started
    here and stopped at the end. The hosts' sandbox roots are temporary, unless `hosts_root`
    names a folder that keeps them: a later rehearsal with the same folder boots the same
    machines again, which keep their deployed release (/opt/mdp), as a rebooted host does.
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
            f"{len(applied.created)} resources (KMS, S3 + artifact, SSM, Secrets Manager, IAM)",
        )
        report.skipped(
            "aws",
            "bucket policies (TLS only)",
            "the emulator serves plain HTTP on loopback and evaluates identity policies only",
        )
        for host in hosts:
            host_run = HostRun(host, run, applied, emulator, report, root / host)
            if host == "generator":
                database = database or StandInDatabase().start()
                rehearse_generator(host_run, database)
            else:
                rehearse_airflow(host_run)
    finally:
        if own_emulator and emulator is not None:
            emulator.stop()
        if own_database and database is not None:
            database.stop()
        if hosts_root is None:
            shutil.rmtree(root, ignore_errors=True)
    return report
