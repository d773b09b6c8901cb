"""Airflow on Amazon MWAA: the engine switch, its validated settings, and what `engine: mwaa` declares."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import outputs
from infra.cloud_init import SECRETS_BACKEND
from infra.config import ConfigError, build_stack_config
from infra.mockrun import ProgramRun, last_declared, run_program, stack_config
from infra.mwaa import bundle
from infra.mwaa.bundle import DBT_EXECUTABLE_ENV
from infra.mwaa.config import MWAA_AIRFLOW_VERSION
from infra.mwaa.iam import LOG_KINDS


def _config(stack: str, airflow: dict[str, Any], **aws: Any) -> Any:
    raw = stack_config(stack)
    raw["mdp:aws"]["airflow"] |= airflow
    raw["mdp:aws"] |= aws
    return build_stack_config(stack, lambda ns, key: raw.get(f"{ns}:{key}"))


def test_dev_defaults_to_the_ec2_host_and_prod_to_mwaa() -> None:
    assert _config("dev", {}).aws.airflow.engine == "ec2"
    prod = _config("prod", {}).aws.airflow
    assert prod.engine == "mwaa"
    assert prod.mwaa.schedulers >= 2  # two schedulers: one can fail without stopping the DAG


def test_bad_environment_class_and_worker_count_stop_the_program_with_their_fixes() -> None:
    with pytest.raises(ConfigError) as err:
        run_program(
            "prod",
            overrides={
                "mdp:aws.airflow.mwaa.environmentClass": "mw1.huge",
                "mdp:aws.airflow.mwaa.maxWorkers": 40,
            },
        )
    message = str(err.value)
    assert last_declared() == []
    assert "mdp:aws.airflow.mwaa.environmentClass" in message and "mw1.huge" in message
    assert "pulumi config set --path 'aws.airflow.mwaa.environmentClass' mw1.small" in message
    assert "mdp:aws.airflow.mwaa.maxWorkers: MWAA runs 1 to 25 workers" in message
    assert "pulumi config set --path 'aws.airflow.mwaa.maxWorkers' 5 --stack prod" in message


@pytest.mark.parametrize(
    ("mwaa", "key", "problem"),
    [
        ({"minWorkers": 4, "maxWorkers": 2}, "maxWorkers", "at least minWorkers (4)"),
        ({"environmentClass": "mw1.micro", "maxWorkers": 2}, "maxWorkers", "1 to 1 workers"),
        ({"environmentClass": "mw1.micro", "schedulers": 2}, "schedulers", "exactly 1 scheduler"),
        ({"schedulers": 6}, "schedulers", "2 to 5 schedulers"),
        ({"minWorkers": 0}, "minWorkers", "1 to 25 workers"),
        (
            {"weeklyMaintenanceWindowStart": "Sunday 3am"},
            "weeklyMaintenanceWindowStart",
            "DAY:HH:MM",
        ),
        (
            {"weeklyMaintenanceWindowStart": "SUN:03:15"},
            "weeklyMaintenanceWindowStart",
            "half hour",
        ),
    ],
)
def test_mwaa_settings_outside_what_mwaa_accepts_name_the_key(
    mwaa: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _config("prod", {"mwaa": mwaa})
    (issue,) = err.value.issues
    assert issue.key == f"mdp:aws.airflow.mwaa.{key}"
    assert problem in issue.problem
    assert issue.fix.startswith(f"pulumi config set --path 'aws.airflow.mwaa.{key}' ")


def test_an_airflow_version_without_kept_constraints_stops_the_program_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        run_program("prod", overrides={"mdp:aws.airflow.mwaa.airflowVersion": "2.10.3"})
    assert last_declared() == []
    (issue,) = err.value.issues
    assert issue.key == "mdp:aws.airflow.mwaa.airflowVersion"
    assert "no constraints kept in infra/mwaa/constraints/" in issue.problem
    assert f"(kept: {MWAA_AIRFLOW_VERSION})" in issue.problem
    assert "python -m infra.mwaa.constraints 2.10.3 <its release date>" in issue.problem
    assert issue.fix == (
        f"pulumi config set --path 'aws.airflow.mwaa.airflowVersion' {MWAA_AIRFLOW_VERSION} "
        "--stack prod"
    )
    # Every kept file is a version the config accepts, and only those.
    kept = tmp_path / "constraints"
    kept.mkdir()
    for version in ("3.1.0", "3.0.6", "3.0.10"):
        (kept / f"constraints-{version}.txt").write_text("apache-airflow==x\n")
    monkeypatch.setattr(bundle, "CONSTRAINTS_DIR", kept)
    assert bundle.kept_versions() == ("3.0.6", "3.0.10", "3.1.0")
    assert (
        _config("prod", {"mwaa": {"airflowVersion": "3.1.0"}}).aws.airflow.mwaa.airflow_version
        == "3.1.0"
    )
    (kept / "constraints-3.1.0.txt").unlink()
    with pytest.raises(ConfigError, match=r"kept: 3\.0\.6, 3\.0\.10\)"):
        _config("prod", {"mwaa": {"airflowVersion": "3.1.0"}})


def test_unknown_engine_and_mwaa_without_nat_name_their_fix() -> None:
    with pytest.raises(ConfigError) as err:
        _config("dev", {"engine": "k8s"})
    assert err.value.issues[0].key == "mdp:aws.airflow.engine"
    assert "'ec2' or 'mwaa'" in err.value.issues[0].problem
    with pytest.raises(ConfigError) as err:
        _config("dev", {"engine": "mwaa"})
    (issue,) = err.value.issues
    assert issue.key == "mdp:aws.natGateway"
    assert issue.fix == "pulumi config set --path 'aws.natGateway' true --stack dev"
    assert _config("dev", {"engine": "mwaa"}, natGateway=True).aws.airflow.engine == "mwaa"


MWAA = "aws:mwaa/environment:Environment"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
SECRET = "aws:secretsmanager/secret:Secret"


def _policy(run: ProgramRun) -> list[dict[str, Any]]:
    doc = run.one("aws:iam/rolePolicy:RolePolicy", "mwaa-execution-policy").props["policy"]
    return list(json.loads(doc)["Statement"])


def _by_sid(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in _policy(run)}


_DEV_MWAA: list[ProgramRun] = []


@pytest.fixture(scope="module")
def dev_mwaa() -> ProgramRun:
    """Dev switched to MWAA by config alone (MWAA's workers need the NAT gateway)."""
    if not _DEV_MWAA:
        _DEV_MWAA.append(
            run_program("dev", {"mdp:aws.airflow.engine": "mwaa", "mdp:aws.natGateway": True})
        )
    return _DEV_MWAA[0]


@pytest.fixture(params=["dev", "prod"])
def each_mwaa(request: pytest.FixtureRequest, prod: ProgramRun) -> ProgramRun:
    return prod if request.param == "prod" else request.getfixturevalue("dev_mwaa")


def test_prod_declares_mwaa_in_two_private_subnets_with_its_own_self_referencing_group(
    prod: ProgramRun,
) -> None:
    env = prod.one(MWAA).props
    private = {r.id for r in prod.of_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    assert len(private) == 2 and set(env["networkConfiguration"]["subnetIds"]) == private
    (group_id,) = env["networkConfiguration"]["securityGroupIds"]
    group = next(g for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup") if g.id == group_id)
    assert [rule["self"] for rule in group.props["ingress"]] == [True]
    assert group.props["ingress"][0]["protocol"] == "-1"
    assert prod.of_type("aws:ec2/instance:Instance") == [
        prod.one("aws:ec2/instance:Instance", "generator")
    ]
    assert prod.outputs[outputs.AIRFLOW_ENGINE] == "mwaa"
    assert outputs.AIRFLOW_INSTANCE_ID not in prod.outputs


def test_prod_mwaa_is_private_encrypted_and_sized_from_config(prod: ProgramRun) -> None:
    env = prod.one(MWAA).props
    settings = stack_config("prod")["mdp:aws"]["airflow"]["mwaa"]
    assert env["webserverAccessMode"] == "PRIVATE_ONLY"
    assert env["kmsKey"] == prod.one("aws:kms/key:Key").outputs["arn"]
    assert env["airflowVersion"] == MWAA_AIRFLOW_VERSION
    assert (
        env["environmentClass"],
        env["minWorkers"],
        env["maxWorkers"],
        env["schedulers"],
        env["weeklyMaintenanceWindowStart"],
    ) == (
        settings["environmentClass"],
        settings["minWorkers"],
        settings["maxWorkers"],
        settings["schedulers"],
        settings["weeklyMaintenanceWindowStart"],
    )
    assert prod.one(MWAA).protect


def test_every_log_type_goes_to_an_encrypted_group_with_the_stacks_retention(
    each_mwaa: ProgramRun,
) -> None:
    run = each_mwaa
    logging = run.one(MWAA).props["loggingConfiguration"]
    assert set(logging) == {
        "dagProcessingLogs",
        "schedulerLogs",
        "taskLogs",
        "webserverLogs",
        "workerLogs",
    }
    assert all(kind["enabled"] for kind in logging.values())
    name = run.one(MWAA).props["name"]
    retention = stack_config(run.stack)["mdp:aws"]["logRetentionDays"]
    groups = {
        g.props["name"]: g.props
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.props["name"].startswith(f"airflow-{name}-")
    }
    assert set(groups) == {f"airflow-{name}-{kind}" for kind in LOG_KINDS}
    key = run.one("aws:kms/key:Key").outputs["arn"]
    assert all(g["retentionInDays"] == retention and g["kmsKeyId"] == key for g in groups.values())


def test_the_secrets_backend_uses_the_ec2_hosts_prefixes(
    prod: ProgramRun, prod_ec2: ProgramRun
) -> None:
    options = prod.one(MWAA).plain["airflowConfigurationOptions"]
    assert options["secrets.backend"] == SECRETS_BACKEND
    kwargs = json.loads(options["secrets.backend_kwargs"])
    host_env = yaml.safe_load(
        prod_ec2.one("aws:ec2/instance:Instance", "airflow").props["userData"]
    )
    airflow_env = next(f for f in host_env["write_files"] if f["path"] == "/etc/mdp/airflow.env")
    assert json.dumps(kwargs) in airflow_env["content"]
    assert kwargs["connections_prefix"] == "mdp/prod/airflow/connections"
    # The same secrets, by name, whichever engine runs.
    names = {r.props["name"] for r in prod.of_type(SECRET) if "/airflow/" in r.props["name"]}
    assert names and names == {
        r.props["name"] for r in prod_ec2.of_type(SECRET) if "/airflow/" in r.props["name"]
    }


def test_source_bucket_is_versioned_private_and_encrypted(prod: ProgramRun) -> None:
    bucket = prod.one("aws:s3/bucket:Bucket", "mwaa-source")
    assert bucket.props["bucketPrefix"].startswith("airflow-")
    assert prod.one(MWAA).props["sourceBucketArn"] == bucket.outputs["arn"]
    versioning = prod.one("aws:s3/bucketVersioning:BucketVersioning", "mwaa-source").props
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    block = prod.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "mwaa-source")
    assert all(
        block.props[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = prod.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "mwaa-source",
    ).props["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": prod.one("aws:kms/key:Key").outputs["arn"],
    }


def test_the_environment_runs_the_object_versions_this_deploy_uploaded(prod: ProgramRun) -> None:
    env = prod.one(MWAA).props
    objects = {o.props["key"]: o for o in prod.of_type(OBJECT) if "mwaa" in o.name}
    assert set(objects) == {"dags/mdp_daily.py", "plugins.zip", "requirements.txt", "startup.sh"}
    for path, version in (
        ("plugins", "plugins.zip"),
        ("requirements", "requirements.txt"),
        ("startupScript", "startup.sh"),
    ):
        assert env[f"{path}S3Path"] == version
        assert env[f"{path}S3ObjectVersion"] == objects[version].outputs["versionId"]
    assert env["dagS3Path"] == "dags/"
    assert all(o.props["serverSideEncryption"] == "aws:kms" for o in objects.values())
    assert (
        prod.outputs[outputs.MWAA_OBJECT_VERSIONS]["plugins.zip"] == env["pluginsS3ObjectVersion"]
    )


def test_requirements_come_from_uv_lock_under_mwaas_constraints(prod: ProgramRun) -> None:
    text = next(o for o in prod.of_type(OBJECT) if o.props["key"] == "requirements.txt").props[
        "content"
    ]
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == f'--constraint "{bundle.constraints_url(MWAA_AIRFLOW_VERSION)}"'
    locked = bundle.locked_versions()
    constrained = bundle.vendored_constraints(MWAA_AIRFLOW_VERSION)
    # Cosmos is not in Airflow's constraints: pinned from uv.lock. The Airbyte provider is:
    # the constraints choose it, whatever uv.lock says.
    assert f"astronomer-cosmos=={locked['astronomer-cosmos']}" in lines
    assert any(line.startswith("apache-airflow-providers-airbyte  #") for line in lines)
    assert "apache-airflow-providers-airbyte" in constrained
    assert not any(line.startswith(("dbt-core", "dbt-snowflake")) for line in lines)


def test_requirements_pin_what_the_constraints_leave_and_refuse_an_unknown_package() -> None:
    text = bundle.requirements_txt(
        "9.9.9", {**_all("2.0"), "astronomer-cosmos": "1.0"}, {"pyarrow": "1"}
    )
    assert "astronomer-cosmos==1.0" in text and "pyarrow  # 1 from the constraints" in text
    with pytest.raises(bundle.BundleError, match="uv lock"):
        bundle.requirements_txt("9.9.9", {}, {})
    with pytest.raises(bundle.BundleError, match=r"python -m infra.mwaa.constraints 9.9.9"):
        bundle.vendored_constraints("9.9.9")


def _all(version: str) -> dict[str, str]:
    return {bundle.normalize(p): version for p in bundle.MWAA_PACKAGES}


def test_startup_script_puts_dbt_in_its_own_virtualenv_and_points_cosmos_at_it(
    prod: ProgramRun, tmp_path: Path
) -> None:
    script = next(o for o in prod.of_type(OBJECT) if o.props["key"] == "startup.sh").props[
        "content"
    ]
    locked = bundle.locked_versions()
    assert f'python3 -m venv "{bundle.DBT_VENV}"' in script
    assert f"dbt-core=={locked['dbt-core']}" in script
    assert f"dbt-snowflake=={locked['dbt-snowflake']}" in script
    path = tmp_path / "startup.sh"
    path.write_text(script)
    subprocess.run(["sh", "-n", str(path)], check=True)
    # What the DAG reads, with the stack's exports bucket and RAW database.
    exports = prod.outputs[outputs.EXPORTS_BUCKET]
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in script.splitlines()
        if line.startswith("export ")
    )
    assert env[DBT_EXECUTABLE_ENV] == f"{bundle.DBT_VENV}/bin/dbt"
    assert env["MDP_TARGET"] == "cloud" and env["MDP_RAW_DATABASE"] == "RAW"
    assert env["MDP_EXPORTS_TARGET"] == f"s3://{exports}/exports"
    assert env["MDP_DBT_PROJECT_DIR"] == f"{bundle.PLUGINS_DIR}/transform"


def test_plugins_archive_holds_the_dag_its_packages_and_the_dbt_project(tmp_path: Path) -> None:
    names = set(bundle.code_files())
    assert {"orchestration/dags/mdp_daily.py", "orchestration/include/dbt.py"} <= names
    assert "transform/dbt_project.yml" in names and "core/paths.py" in names
    assert not any(n.startswith(("mdp/", "dashboard/", "infra/", "tests/")) for n in names)
    (tmp_path / "transform" / "target").mkdir(parents=True)
    (tmp_path / "transform" / "target" / "manifest.json").write_text("{}")
    assert "transform/target/manifest.json" in bundle.code_files(tmp_path)
    # The loader in dags/ imports the DAG from the plugins folder.
    tree = ast.parse(bundle.DAG_LOADER)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [
        ("orchestration.dags.mdp_daily", ["dag"])
    ]


def test_execution_role_is_least_privilege(prod: ProgramRun) -> None:
    role = prod.one("aws:iam/role:Role", "mwaa-execution-role").props
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"]
    assert set(trust) == {"airflow.amazonaws.com", "airflow-env.amazonaws.com"}
    sids = _by_sid(prod)
    env = prod.one(MWAA)
    assert sids["PublishMetricsOfThisEnvironment"]["Resource"] == env.outputs["arn"]
    assert sids["WriteOwnLogGroups"]["Resource"][0].endswith(":log-group:airflow-mdp-prod-*")
    source = prod.one("aws:s3/bucket:Bucket", "mwaa-source").outputs["arn"]
    assert sids["ReadSourceBucket"]["Resource"] == [source, f"{source}/*"]
    assert not any(a.startswith("s3:Put") for a in sids["ReadSourceBucket"]["Action"])
    assert sids["CeleryQueues"]["Resource"].endswith(":airflow-celery-*")
    kms = sids["UseKeyThroughServices"]
    assert kms["Resource"] == prod.one("aws:kms/key:Key").outputs["arn"]
    assert "kms:ViaService" in kms["Condition"]["StringLike"]
    readable = sids["ReadAirflowSecrets"]["Resource"]
    backend = {
        r.outputs["arn"]
        for r in prod.of_type(SECRET)
        if r.props["name"].startswith("mdp/prod/airflow/")
    }
    assert set(readable) == backend and all("*" not in arn for arn in readable)
    reads_secrets = [s for s in _policy(prod) if "secretsmanager" in json.dumps(s["Action"])]
    assert reads_secrets == [sids["ReadAirflowSecrets"]]


def test_switching_dev_to_mwaa_is_a_config_change(dev: ProgramRun, dev_mwaa: ProgramRun) -> None:
    assert dev.of_type(MWAA) == []
    assert dev.one("aws:ec2/instance:Instance", "airflow")
    env = dev_mwaa.one(MWAA).props
    assert env["name"] == "mdp-dev" and env["webserverAccessMode"] == "PRIVATE_ONLY"
    assert [i.name for i in dev_mwaa.of_type("aws:ec2/instance:Instance")] == ["generator-instance"]

    # The secrets keep their names and logical names: the engine change moves them.
    def secrets(run: ProgramRun) -> set[tuple[str, str]]:
        return {
            (r.name, r.props["name"]) for r in run.of_type(SECRET) if "/airflow/" in r.props["name"]
        }

    assert secrets(dev) and secrets(dev) == secrets(dev_mwaa)
    assert dev_mwaa.outputs[outputs.MWAA_ENVIRONMENT_NAME] == "mdp-dev"
    assert (
        dev_mwaa.outputs[outputs.AIRFLOW_EGRESS_IP]
        == dev_mwaa.named("network-nat-eip").outputs["publicIp"]
    )
