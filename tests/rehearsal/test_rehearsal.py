"""The rehearsal passes for both stacks, and each sabotaged wire fails it, named.

One AWS emulator and one stand-in RDS serve every rehearsal here. The passing runs keep their
hosts' roots, so a sabotage aimed at the Airflow host boots that same machine again (its
release deployed) instead of building Airflow's environment once more.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import outputs
from infra.mockrun import ProgramRun, Recorded, cached_run, run_program
from rehearsal.daily_run import SOURCE
from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator
from rehearsal.report import Report, Status, Step
from rehearsal.run import EXAMPLE_AIRBYTE_CLIENT_ID, example_snowflake, program_run, rehearse
from rehearsal.standins import CloudStandIns, cloud_stand_ins
from tests import contract_marts
from tests.infra.snowflake.conftest import snowflake_config
from tests.orchestration.cloud_services import assert_marts_match_contract

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def hosts_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # pytest's own temp folder: its release venvs are removed with old sessions, not here.
    return tmp_path_factory.mktemp("rehearsal-hosts")


STACKS = ("dev", "prod")


@pytest.fixture(scope="module")
def reports(emulator: Emulator, database: StandInDatabase, hosts_root: Path) -> dict[str, Report]:
    return {
        stack: rehearse(
            stack,
            run=cached_run(stack),
            emulator=emulator,
            database=database,
            hosts_root=hosts_root,
        )
        for stack in STACKS
    }


@pytest.fixture(params=STACKS)
def report(request: pytest.FixtureRequest, reports: dict[str, Report]) -> Report:
    return reports[request.param]


def _step(report: Report, host: str, prefix: str) -> Step:
    found = [s for s in report.steps if s.host == host and s.name.startswith(prefix)]
    assert found, f"no step {prefix!r} on {host}: {[s.name for s in report.steps]}"
    return found[0]


def test_the_rehearsal_passes(report: Report) -> None:
    assert report.passed, report.render()
    assert "All " in report.render() and "✗" not in report.render()


def test_the_generator_host_ran_for_real(report: Report) -> None:
    for step in (
        "instance profile: assume own role as EC2",
        "systemctl start mdp-sync.service",
        "systemctl start mdp-migrate.service",
        "replication user: exactly the grants the sync needs",
        "one generator cycle landed in the stand-in RDS",
    ):
        assert _step(report, "generator", step).status is Status.OK, report.render()
    # What cannot run here is listed, never counted as passed.
    assert _step(report, "generator", "TLS sslmode=verify-full").status is Status.SKIPPED


def test_the_airflow_host_reads_its_secrets_and_writes_its_exports(
    reports: dict[str, Report],
) -> None:
    report = reports["dev"]
    for step in (
        "instance profile: assume own role as EC2",
        "systemctl start mdp-sync.service",
        "Airflow secrets backend",
        "exports: Parquet to MDP_EXPORTS_TARGET and read back",
    ):
        assert _step(report, "airflow", step).status is Status.OK, report.render()
    assert "2 variables" in _step(report, "airflow", "Airflow secrets backend").detail
    assert _step(report, "airflow", "daily run of the cloud DAG").status is Status.SKIPPED


def test_the_airflow_host_migrates_its_metadata_database_and_brings_its_units_up(
    reports: dict[str, Report],
) -> None:
    report = reports["dev"]
    assert _step(report, "airflow", "/usr/local/bin/mdp-airflow-setup").status is Status.OK
    migrated = _step(report, "airflow", "airflow db migrate: the metadata schema")
    assert migrated.status is Status.OK, report.render()
    assert "database airflow owned by airflow: revision " in migrated.detail
    # What cannot run here stood in, each listed as not rehearsed with what it was asked.
    stand_ins = {
        command: _step(report, "airflow", f"stand-in {command}")
        for command in ("postgresql-setup", "sudo", "chown")
    }
    assert all(s.status is Status.SKIPPED and s.detail for s in stand_ins.values())
    assert "-u airflow airflow db migrate" in stand_ins["sudo"].name
    assert "airflow:airflow /var/lib/airflow" in stand_ins["chown"].name
    postgresql = _step(report, "airflow", "→ systemctl enable --now postgresql")
    assert postgresql.status is Status.SKIPPED
    for unit in ("scheduler", "dag-processor", "triggerer"):
        step = _step(report, "airflow", f"→ systemctl enable --now airflow@{unit}")
        assert step.status is Status.OK and step.detail.startswith("running after "), step
    api = _step(report, "airflow", "→ systemctl enable --now airflow@api-server")
    assert api.status is Status.OK and api.detail.startswith("up, health 200 in "), api
    assert "AIRFLOW__API__PORT=" in api.detail and "in place of 8080" in api.detail


def test_prod_on_mwaa_rehearses_its_ec2_hosts_and_what_mwaa_does_with_aws(
    reports: dict[str, Report],
) -> None:
    report = reports["prod"]
    # Only what prod declares boots: the generator; no Airflow host, and MWAA runs what it can.
    assert report.hosts() == ["aws", "generator", "mwaa"], report.render()
    # Its bundle went up with the rest, under the stack's key: DAG loader, plugins, requirements, startup script.
    applied = _step(report, "aws", "apply the declared").detail
    bundle = applied.split("MWAA's bundle: ")[-1].split(", ")
    assert sorted(bundle) == ["dags/mdp_daily.py", "plugins.zip", "requirements.txt", "startup.sh"]
    assert "MWAA" not in " ".join(s.detail for s in reports["dev"].steps)
    # MWAA's service assumes the execution role, which fetches the bundle at its versions and
    # reads the secrets and writes the exports; the startup script runs as on a scheduler.
    for step in (
        "execution role: assumed by MWAA",
        "bundle: fetched from the source bucket at the declared versions",
        "startup.sh: run as on a scheduler",
        "Airflow secrets backend: every variable and connection, with the execution role",
        "exports: Parquet to the startup script's MDP_EXPORTS_TARGET",
    ):
        assert _step(report, "mwaa", step).status is Status.OK, report.render()
    fetched = _step(report, "mwaa", "bundle: fetched").detail
    assert all(f"{key}@" in fetched for key in ("plugins.zip", "requirements.txt", "startup.sh"))
    assert "MDP_EXPORTS_TARGET" in _step(report, "mwaa", "startup.sh: run as").detail
    assert "plugins.zip's export writer" in _step(report, "mwaa", "exports:").detail
    # What runs only on MWAA is listed, never counted as passed.
    mwaa = _step(report, "mwaa", "Amazon MWAA environment")
    assert mwaa.status is Status.SKIPPED and "no MWAA" in mwaa.detail
    assert _step(report, "mwaa", "startup.sh on a worker").status is Status.SKIPPED


def test_mwaas_execution_role_losing_the_source_bucket_fails_naming_the_wire(
    emulator: Emulator, database: StandInDatabase, reports: dict[str, Report]
) -> None:
    run = _edit(
        cached_run("prod"), "airflow-mwaa-execution-policy", _drop_statement("ReadSourceBucket")
    )
    broken = rehearse("prod", run=run, hosts=["mwaa"], emulator=emulator, database=database)
    (step,) = _failure(broken, "mwaa")
    assert step.name.startswith("bundle: fetched from the source bucket")
    assert "s3:GetObject with the execution role" in step.wire
    assert "ReadSourceBucket" in step.behind and "airflow-mwaa-execution-role" in step.behind
    assert "AccessDenied" in step.detail


@pytest.fixture(scope="module")
def with_cloud() -> ProgramRun:
    """dev as a user sets it up with Snowflake and Airbyte Cloud (`mdp rehearse --with-cloud`):
    Airflow gets its connections, the connection id to sync, and the dashboard its key."""
    return program_run("dev", with_cloud=True)


@pytest.fixture(scope="module")
def cloud() -> Iterator[CloudStandIns]:
    with cloud_stand_ins() as services:
        yield services


@dataclass
class DailyRun:
    report: Report
    expected: contract_marts.ContractMarts


@pytest.fixture(scope="module")
def daily_run(
    emulator: Emulator,
    database: StandInDatabase,
    hosts_root: Path,
    reports: dict[str, Report],
    with_cloud: ProgramRun,
    cloud: CloudStandIns,
) -> DailyRun:
    # The dev machines of the passing run boot again with this user data: the generator lands
    # a cycle in a fresh RDS, then the Airflow host runs the day. Their units came up in that
    # run, and prod's dashboard host brings the dashboard up.
    report = rehearse(
        "dev", run=with_cloud, hosts=["generator", "airflow"], emulator=emulator,
        database=database, hosts_root=hosts_root, services=False, cloud=cloud,
    )  # fmt: skip
    source = with_cloud.one(SOURCE).plain["database"]
    with database.superuser(source) as conn:
        expected = contract_marts.compute(conn)
    return DailyRun(report, expected)


def test_with_snowflake_airflow_reads_its_connections_and_the_dashboard_fetches_its_key(
    daily_run: DailyRun,
) -> None:
    report = daily_run.report
    assert report.passed, report.render()
    backend = _step(report, "airflow", "Airflow secrets backend").detail
    assert "3 variables, 2 connections" in backend, backend
    assert _step(report, "airflow", "dashboard key script").status is Status.OK
    assert _step(report, "airflow", "wires: env files").detail.count("MDP_SNOWFLAKE_") == 5
    _rotation_restarts_the_dashboard(report, "airflow")


def test_the_airflow_host_runs_the_cloud_dag_for_a_day_against_the_stand_ins(
    daily_run: DailyRun, with_cloud: ProgramRun, cloud: CloudStandIns
) -> None:
    report = daily_run.report
    run = _step(report, "airflow", "daily run of the cloud DAG")
    assert run.status is Status.OK, report.render()
    assert "tasks succeeded" in run.detail and "(1 sync)" in run.detail, run.detail
    # The DAG synced the connection the stack exports, signing in as the client the stack wrote.
    connection_id = with_cloud.outputs[outputs.AIRBYTE_CONNECTION_ID]
    (job,) = cloud.airbyte.jobs.values()
    assert job.connection_id == connection_id and job.status == "succeeded", job
    (token, *_) = cloud.airbyte.requests("POST", "/v1/applications/token")
    assert token.body["client_id"] == EXAMPLE_AIRBYTE_CLIENT_ID
    stand_ins = _step(report, "airflow", "stand-ins: fakesnow and the fake Airbyte API")
    assert f"reading database app as {with_cloud.one(SOURCE).plain['username']}" in stand_ins.detail
    assert (
        _step(report, "airflow", "Snowflake and Airbyte Cloud themselves").status is Status.SKIPPED
    )
    # The marts dbt built in fakesnow equal the contract's oracle over the stand-in RDS.
    analytics = example_snowflake("dev")["namePrefix"] + "ANALYTICS"
    assert_marts_match_contract(cloud.snowflake, analytics, daily_run.expected)
    exports = _step(report, "airflow", "exports: the DAG's Parquet in the exports bucket")
    assert exports.status is Status.OK, report.render()
    assert f"s3://{with_cloud.outputs[outputs.EXPORTS_BUCKET]}" in exports.detail


def _rotation_restarts_the_dashboard(report: Report, host: str) -> None:
    # The timer's first run at boot found the key unchanged; a new version made it restart.
    timer = _step(report, host, "systemctl enable --now mdp-dashboard-key-check.timer")
    assert timer.status is Status.OK, report.render()
    after = report.steps[report.steps.index(timer) :]
    assert not [s for s in after if s.host == host and "try-restart mdp-dashboard" in s.name]
    rotation = _step(report, host, "key rotation: a new key in the secret restarts the dashboard")
    assert rotation.status is Status.OK, report.render()
    assert "try-restart mdp-dashboard.service" in rotation.detail


# ---- Sabotage: change what the program recorded, never the product, and watch the wire fail.


def _edit(
    run: ProgramRun, name: str, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> ProgramRun:
    def change(r: Recorded) -> Recorded:
        return dataclasses.replace(r, inputs=edit(dict(r.inputs))) if r.name == name else r

    return dataclasses.replace(run, resources=[change(r) for r in run.resources])


def _drop_statement(sid: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(inputs: dict[str, Any]) -> dict[str, Any]:
        policy = json.loads(inputs["policy"])
        kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
        assert len(kept) < len(policy["Statement"]), f"no statement {sid}"
        return inputs | {"policy": json.dumps(policy | {"Statement": kept})}

    return edit


def _failure(report: Report, host: str) -> list[Step]:
    assert not report.passed, report.render()
    failures = [s for s in report.failures if s.host == host]
    assert failures, report.render()
    return failures


def test_airflow_losing_its_secret_read_fails_naming_the_wire(
    emulator: Emulator,
    database: StandInDatabase,
    hosts_root: Path,
    daily_run: DailyRun,
    with_cloud: ProgramRun,
) -> None:
    run = _edit(with_cloud, "airflow-policy", _drop_statement("ReadAirflowSecrets"))
    broken = rehearse(
        "dev", run=run, hosts=["airflow"], emulator=emulator, database=database,
        hosts_root=hosts_root, services=False,
    )  # fmt: skip
    (step,) = _failure(broken, "airflow")
    assert step.name.startswith("Airflow secrets backend")
    assert "secretsmanager:GetSecretValue" in step.wire and "AIRFLOW__SECRETS__BACKEND" in step.wire
    assert "ReadAirflowSecrets" in step.behind
    assert "broken wire" in broken.render()
    # Nothing runs on a host whose wiring is broken: the day is not attempted.
    assert (
        _step(broken, "airflow", "daily run of the cloud DAG").detail
        == "not run: a step above failed"
    )


def test_airflow_naming_a_metadata_database_the_setup_does_not_create_fails_naming_the_wire(
    emulator: Emulator, database: StandInDatabase, hosts_root: Path, reports: dict[str, Report]
) -> None:
    def other_database(inputs: dict[str, Any]) -> dict[str, Any]:
        assert "airflow@/airflow?" in inputs["userData"]
        return inputs | {
            "userData": inputs["userData"].replace("airflow@/airflow?", "airflow@/meta?")
        }

    broken = rehearse(
        "dev", run=_edit(cached_run("dev"), "airflow-instance", other_database), hosts=["airflow"],
        emulator=emulator, database=database, hosts_root=hosts_root, services=False,
    )  # fmt: skip
    (step,) = _failure(broken, "airflow")
    assert step.name == "/usr/local/bin/mdp-airflow-setup"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in step.wire
    assert 'database "meta" does not exist' in step.detail


def test_a_renamed_output_fails_the_env_file_wire(
    emulator: Emulator, database: StandInDatabase, hosts_root: Path, reports: dict[str, Report]
) -> None:
    run = cached_run("dev")
    renamed = {("dbHost" if k == outputs.DB_ENDPOINT else k): v for k, v in run.outputs.items()}
    broken = rehearse(
        "dev", run=dataclasses.replace(run, outputs=renamed), hosts=["generator"],
        emulator=emulator, database=database, hosts_root=hosts_root,
    )  # fmt: skip
    (step,) = _failure(broken, "generator")
    assert step.name == "wire MDP_DB_HOST"
    assert step.wire == "/etc/mdp/host.env MDP_DB_HOST ← output dbEndpoint"
    assert "exports no output 'dbEndpoint'" in step.detail


def test_a_wrong_secret_arn_fails_the_generator_naming_the_wire(
    emulator: Emulator, database: StandInDatabase, hosts_root: Path, reports: dict[str, Report]
) -> None:
    run = cached_run("dev")
    real = str(run.outputs[outputs.DB_MASTER_SECRET_ARN])
    wrong = real.rsplit(":", 1)[0] + ":mdp/dev/db/master-XyZ123"

    def point_elsewhere(inputs: dict[str, Any]) -> dict[str, Any]:
        assert real in inputs["userData"]
        return inputs | {"userData": inputs["userData"].replace(real, wrong)}

    broken = rehearse(
        "dev", run=_edit(run, "generator-instance", point_elsewhere), hosts=["generator"],
        emulator=emulator, database=database, hosts_root=hosts_root,
    )  # fmt: skip
    failures = _failure(broken, "generator")
    assert all("MDP_DB_SECRET_ARN" in s.wire for s in failures), broken.render()
    # The value no longer matches its output, and the host's own call is refused.
    assert failures[0].name == "wire MDP_DB_SECRET_ARN"
    assert any("secretsmanager:GetSecretValue" in s.wire for s in failures[1:]), broken.render()


def test_dropping_the_artifact_read_fails_the_deploy_naming_the_bucket(
    emulator: Emulator, database: StandInDatabase
) -> None:
    # A machine booting for the first time: it has no release yet, so it must fetch one.
    run = _edit(cached_run("dev"), "generator-policy", _drop_statement("ReadArtifacts"))
    broken = rehearse("dev", run=run, hosts=["generator"], emulator=emulator, database=database)
    (step,) = _failure(broken, "generator")
    assert step.name == "systemctl start mdp-sync.service"
    assert "MDP_ARTIFACT_BUCKET → s3:GetObject" in step.wire
    assert f"output {outputs.ARTIFACT_BUCKET}" in step.behind and "ReadArtifacts" in step.behind


def test_prods_dashboard_host_deploys_and_fetches_its_key_with_its_own_role(
    emulator: Emulator, database: StandInDatabase, hosts_root: Path, reports: dict[str, Report]
) -> None:
    """Prod on MWAA with Snowflake's dashboard user: its dashboard host boots, then loses its key read."""
    run = run_program("prod", overrides={"mdp:snowflake": snowflake_config("prod")})
    report = rehearse(
        "prod", run=run, hosts=["dashboard"], emulator=emulator, database=database,
        hosts_root=hosts_root,
    )  # fmt: skip
    assert report.passed, report.render()
    assert report.hosts() == ["aws", "dashboard", "mwaa"], report.render()
    assert _step(report, "dashboard", "instance profile").detail.startswith("dashboard-role")
    assert _step(report, "dashboard", "systemctl start mdp-sync.service").status is Status.OK
    assert _step(report, "dashboard", "dashboard key script").status is Status.OK
    assert _step(report, "dashboard", "wires: env files").detail.count("MDP_SNOWFLAKE_") == 5
    served = _step(report, "dashboard", "systemctl enable --now mdp-dashboard.service")
    assert served.status is Status.OK and served.detail.startswith("up, health 200 in "), served
    assert "--port " in served.detail and "in place of 8501" in served.detail
    _rotation_restarts_the_dashboard(report, "dashboard")
    # The same machine again, its role without the key's read: the key script fails, named.
    broken = rehearse(
        "prod", run=_edit(run, "dashboard-policy", _drop_statement("ReadDashboardKey")),
        hosts=["dashboard"], emulator=emulator, database=database, hosts_root=hosts_root,
    )  # fmt: skip
    failures = _failure(broken, "dashboard")
    assert "MDP_DASHBOARD_KEY_SECRET_ARN → secretsmanager:GetSecretValue" in failures[0].wire
    assert "ReadDashboardKey" in failures[0].behind


def test_asking_for_mwaa_on_a_stack_without_it_says_so(
    emulator: Emulator, database: StandInDatabase
) -> None:
    report = rehearse(
        "dev", run=cached_run("dev"), hosts=["mwaa"], emulator=emulator, database=database
    )
    step = _step(report, "mwaa", "Amazon MWAA environment")
    assert step.status is Status.SKIPPED and "declares no MWAA environment" in step.detail
    assert report.hosts() == ["aws", "mwaa"], report.render()
