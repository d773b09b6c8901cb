"""The dashboard in the cloud: its Snowflake user, its key's secret, and its unit on the Airflow host."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.warehouse import snowflake_settings
from infra import outputs
from infra.cloud_init import DASHBOARD_KEY_PATH, DASHBOARD_PORT, DASHBOARD_USER, FILES
from infra.cost import PlannedResource, estimate
from infra.mockrun import ProgramRun, walk_strings
from infra.policies.rules import Context, evaluate
from infra.policies.rules import snowflake as rules
from infra.snowflake import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake.config import SnowflakeConfig
from tests.infra.snowflake.conftest import SnowflakeRun, current_key, run_component
from tests.infra.test_program import CLOUD_CONFIG_SCHEMA

EC2 = "aws:ec2/instance:Instance"
GET_SECRET = "secretsmanager:GetSecretValue"
UNIT = "/etc/systemd/system/mdp-dashboard.service"


def _prefix(run: SnowflakeRun) -> str:
    return "DEV_" if run.run.stack == "dev" else ""


def _egress_ip(run: SnowflakeRun) -> str:
    eip = "network-airflow-eip" if run.run.stack == "dev" else "network-nat-eip"
    return str(run.run.named(eip).outputs["publicIp"])


def _airflow_doc(run: ProgramRun) -> dict[str, Any]:
    return dict(yaml.safe_load(str(run.one(EC2, "airflow").props["userData"])))


def _files(doc: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def _env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {k: shlex.split(v)[0] for k, v in pairs}


def _statements(run: ProgramRun, host: str) -> list[dict[str, Any]]:
    policy = run.one("aws:iam/rolePolicy:RolePolicy", f"{host}-policy").props["policy"]
    return list(json.loads(policy)["Statement"])


def _listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_dashboard_user_signs_in_with_a_key_from_the_airflow_host_only(
    sf_stack: SnowflakeRun,
) -> None:
    prefix = _prefix(sf_stack)
    user = next(
        r
        for r in sf_stack.of_type(rules.SERVICE_USER)
        if r.props["name"] == f"{prefix}DASHBOARD_SVC"
    )
    assert str(user.props["rsaPublicKey"]).startswith("MOCK")
    assert "password" not in user.props
    assert user.props["defaultRole"] == f"{prefix}REPORTER"
    assert user.props["defaultWarehouse"] == f"{prefix}REPORTING_WH"
    assert user.props["defaultNamespace"] == f"{prefix}ANALYTICS.FINANCE"
    assert user.props["defaultSecondaryRolesOption"] == "NONE"
    assert user.props["networkPolicy"] == f"{prefix}DASHBOARD_SVC_POLICY"
    policy = next(
        r
        for r in sf_stack.of_type(rules.NETWORK_POLICY)
        if r.props["name"] == user.props["networkPolicy"]
    )
    assert policy.props["allowedNetworkRuleLists"] == [
        f'"{prefix}ADMIN"."NETWORK"."DASHBOARD_SVC_INGRESS"'
    ]
    rule = next(
        r
        for r in sf_stack.of_type(rules.NETWORK_RULE)
        if r.props["name"] == "DASHBOARD_SVC_INGRESS"
    )
    # Not the dbt user's extra networks: the dashboard runs nowhere but on the Airflow host.
    assert rule.props["valueLists"] == [f"{_egress_ip(sf_stack)}/32"]
    role_grants = [
        r.props
        for r in sf_stack.of_type(rules.GRANT_ACCOUNT_ROLE)
        if r.props.get("userName") == user.props["name"]
    ]
    assert role_grants == [{"roleName": f"{prefix}REPORTER", "userName": user.props["name"]}]
    assert sf_stack.run.outputs[outputs.SNOWFLAKE_DASHBOARD_USER] == user.props["name"]


def test_dashboard_key_is_only_in_its_own_secret(sf_stack: SnowflakeRun) -> None:
    run = sf_stack.run
    key = current_key(run, "dashboard")
    values = [key.outputs[k] for k in ("privateKeyPemPkcs8", "privateKeyPem", "privateKeyOpenssh")]
    holders = [
        r.name
        for r in run.resources
        if r is not key and any(v in s for s in walk_strings(r.inputs) for v in values)
    ]
    assert holders == ["snowflake-dashboard-svc-key-secret-version"]
    version = run.named("snowflake-dashboard-svc-key-secret-version")
    assert "secretString" in version.secret_inputs
    payload = json.loads(version.plain["secretString"])
    prefix = _prefix(sf_stack)
    assert payload["private_key"] == key.outputs["privateKeyPemPkcs8"]
    assert (payload["user"], payload["role"], payload["warehouse"], payload["database"]) == (
        f"{prefix}DASHBOARD_SVC",
        f"{prefix}REPORTER",
        f"{prefix}REPORTING_WH",
        f"{prefix}ANALYTICS",
    )
    secret = run.named("snowflake-dashboard-svc-key-secret")
    assert secret.inputs["name"] == f"mdp/{run.stack}/snowflake/dashboard-svc"
    assert secret.inputs["kmsKeyId"] == run.one("aws:kms/key:Key").outputs["arn"]
    assert version.inputs["secretId"] == secret.id
    arn = run.outputs[outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN]
    assert arn == secret.outputs["arn"] and not run.is_secret(
        outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN
    )
    for name, value in run.outputs.items():
        assert not any(v in s for s in walk_strings(value) for v in values), name


def test_airflow_role_reads_the_dashboard_key_and_nothing_broader(
    sf_ec2_stack: SnowflakeRun,
) -> None:
    run = sf_ec2_stack.run
    arn = run.outputs[outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN]
    statements = _statements(run, "airflow")
    dashboard = [s for s in statements if s.get("Sid") == "ReadDashboardKey"]
    assert dashboard == [
        {"Sid": "ReadDashboardKey", "Effect": "Allow", "Action": GET_SECRET, "Resource": arn}
    ]
    readable = {
        res
        for s in statements
        if GET_SECRET in _listed(s["Action"])
        for res in _listed(s["Resource"])
    }
    # The backend's own secrets plus this one: not the Airbyte or dbt user's key secrets.
    backend = {
        r.outputs["arn"]
        for r in run.of_type("aws:secretsmanager/secret:Secret")
        if r.inputs["name"].startswith(f"mdp/{run.stack}/airflow/")
    }
    assert backend and readable == {*backend, arn}
    assert run.outputs[outputs.SNOWFLAKE_DBT_KEY_SECRET_ARN] not in readable
    assert run.outputs[outputs.SNOWFLAKE_AIRBYTE_KEY_SECRET_ARN] not in readable
    assert all("*" not in res for res in readable)
    generator = {res for s in _statements(run, "generator") for res in _listed(s["Resource"])}
    assert arn not in generator


def test_airflow_host_serves_the_dashboard_with_names_only(sf_ec2_stack: SnowflakeRun) -> None:
    run = sf_ec2_stack.run
    text = str(run.one(EC2, "airflow").props["userData"])
    assert len(text.encode()) < 16 * 1024
    doc = _airflow_doc(run)
    jsonschema.validate(doc, CLOUD_CONFIG_SCHEMA)
    files = _files(doc)
    unit = files[UNIT]
    assert (
        f"dashboard --host 127.0.0.1 --port {DASHBOARD_PORT}" in unit
        and f"User={DASHBOARD_USER}" in unit
        and "ExecStartPre=/usr/local/bin/mdp-dashboard-key" in unit
        and "EnvironmentFile=/etc/mdp/dashboard.env" in unit
        and "WantedBy=multi-user.target" in unit
    )
    assert ["systemctl", "enable", "--now", "mdp-dashboard.service"] in doc["runcmd"]
    assert DASHBOARD_USER in [u["name"] for u in doc["users"] if isinstance(u, dict)]
    assert "mdp-dashboard" in _env(files["/etc/mdp/host.env"])["MDP_RESTART_UNITS"].split()
    env = _env(files["/etc/mdp/dashboard.env"])
    prefix = _prefix(sf_ec2_stack)
    assert env["MDP_TARGET"] == "cloud"
    assert (
        env["MDP_DASHBOARD_KEY_SECRET_ARN"]
        == run.outputs[outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN]
    )
    # What the dashboard itself reads from these variables, with no default filling a gap.
    assert snowflake_settings(env) == {
        "account": run.outputs[outputs.SNOWFLAKE_ACCOUNT],
        "user": f"{prefix}DASHBOARD_SVC",
        "private_key_file": DASHBOARD_KEY_PATH,
        "role": f"{prefix}REPORTER",
        "warehouse": f"{prefix}REPORTING_WH",
        "database": f"{prefix}ANALYTICS",
    }
    secrets = [
        r.outputs[k]
        for r in run.of_type(rules.TLS_PRIVATE_KEY)
        for k in ("privateKeyPemPkcs8", "privateKeyPem", "privateKeyOpenssh")
    ]
    assert secrets and not any(s in text for s in secrets)
    assert "MOCKSECRET" not in text and "PRIVATE KEY-----" not in text


def test_no_inbound_rule_reaches_the_dashboard(sf_ec2_stack: SnowflakeRun) -> None:
    run = sf_ec2_stack.run
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "airflow")
    assert sg.props.get("ingress", []) == []
    rules_in = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r.name for r in rules_in] == ["generator-db-ingress"]
    assert all(r.props["securityGroupId"] != sg.id for r in rules_in)
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.props.get("ingress") or []:
            assert not rule["fromPort"] <= DASHBOARD_PORT <= rule["toPort"], group.name
    assert run.one(EC2, "airflow").props["associatePublicIpAddress"] is (run.stack == "dev")


def test_without_snowflake_or_the_airflow_host_there_is_no_dashboard(dev: ProgramRun) -> None:
    assert UNIT not in _files(_airflow_doc(dev))
    assert not any(s.get("Sid") == "ReadDashboardKey" for s in _statements(dev, "airflow"))
    assert outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN not in dev.outputs
    found: dict[str, Any] = {}
    settings = {
        "organizationName": "O",
        "accountName": "A",
        "creditQuota": 5,
        "namePrefix": "T_",
        "dbtAllowedCidrs": ["198.51.100.7/32"],
    }

    def build() -> dict[str, object]:
        platform = SnowflakePlatform(
            "t",
            SnowflakePlatformArgs(
                settings=SnowflakeConfig.model_validate(settings),
                stack="dev",
                protect=False,
                airbyte_cidrs=["13.37.4.46/32"],
            ),
        )
        found["user"] = platform.dashboard_user
        found["arn"] = platform.dashboard_key_secret_arn
        return {}

    recorded = run_component(build)
    assert found == {"user": None, "arn": None}
    assert not [r for r in recorded if "dashboard" in r.name]


def _fake_aws(bin_dir: Path, secret_string: str) -> None:
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    # Answers like `aws secretsmanager get-secret-value --query SecretString --output text`.
    aws.write_text(
        "#!/usr/bin/env bash\n"
        'echo "$@" > "$(dirname "$0")/args"\n'
        f"cat <<'JSON'\n{secret_string}\nJSON\n"
    )
    aws.chmod(0o755)


@pytest.mark.skipif(shutil.which("jq") is None, reason="the key script needs jq")
def test_key_script_writes_the_key_for_its_user_only(tmp_path: Path) -> None:
    pem = "-----" + "BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    _fake_aws(tmp_path / "bin", json.dumps({"user": "DEV_DASHBOARD_SVC", "private_key": pem}))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    key = run_dir / "reporter.p8"
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "AWS_REGION": "us-east-1",
        "MDP_DASHBOARD_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x",
        "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": str(key),
    }
    script = FILES / "mdp-dashboard-key.sh"
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert key.read_text().strip() == pem
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.stat().st_uid == os.getuid()
    assert pem not in result.stdout + result.stderr
    args = (tmp_path / "bin" / "args").read_text().split()
    assert args[:2] == ["secretsmanager", "get-secret-value"]
    assert "arn:aws:secretsmanager:us-east-1:1:secret:x" in args
    assert sorted(p.name for p in run_dir.iterdir()) == ["reporter.p8"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="the key script needs jq")
def test_key_script_refuses_a_secret_without_a_key(tmp_path: Path) -> None:
    _fake_aws(tmp_path / "bin", json.dumps({"user": "DEV_DASHBOARD_SVC", "private_key": "oops"}))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "AWS_REGION": "us-east-1",
        "MDP_DASHBOARD_KEY_SECRET_ARN": "arn:x",
        "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": str(run_dir / "reporter.p8"),
    }
    result = subprocess.run(
        ["bash", str(FILES / "mdp-dashboard-key.sh")], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "no PKCS#8 private key" in result.stderr and "arn:x" in result.stderr
    assert list(run_dir.iterdir()) == []


def test_dashboard_unit_passes_systemd_verification(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "mdp-dashboard.service"
    unit.write_text((FILES / "mdp-dashboard.service").read_text())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    # Paths that exist only on the host (the venv, the key script) are not syntax errors.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "mdp-dashboard.service" in line
        and "is not executable" not in line
        and "No such file" not in line
        and "Command " not in line
    ]
    assert problems == []


def test_dbt_on_the_airflow_host_reads_the_stacks_raw_database(
    sf_ec2_stack: SnowflakeRun, dev: ProgramRun
) -> None:
    env = _env(_files(_airflow_doc(sf_ec2_stack.run))["/etc/mdp/airflow.env"])
    assert env["MDP_RAW_DATABASE"] == f"{_prefix(sf_ec2_stack)}RAW"
    # Without Snowflake configured the sources keep the contract's name.
    assert _env(_files(_airflow_doc(dev))["/etc/mdp/airflow.env"])["MDP_RAW_DATABASE"] == "RAW"


def test_mwaa_stack_serves_the_dashboard_from_its_own_private_host(sf_prod: SnowflakeRun) -> None:
    run = sf_prod.run
    assert run.outputs[outputs.AIRFLOW_ENGINE] == "mwaa"
    host = run.one(EC2, "dashboard")
    assert run.outputs[outputs.DASHBOARD_INSTANCE_ID] == host.id
    assert host.props["instanceType"] == "t3.micro"
    assert host.props["associatePublicIpAddress"] is False
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert host.props["subnetId"] in private
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "dashboard")
    assert sg.props.get("ingress", []) == [] and host.props["vpcSecurityGroupIds"] == [sg.id]
    # The Airflow host's dashboard, nothing of Airflow: the same unit and key script.
    doc = yaml.safe_load(str(host.props["userData"]))
    jsonschema.validate(doc, CLOUD_CONFIG_SCHEMA)
    files = _files(doc)
    assert files[UNIT] == (FILES / "mdp-dashboard.service").read_text()
    assert files["/usr/local/bin/mdp-dashboard-key"] == (FILES / "mdp-dashboard-key.sh").read_text()
    assert not any("airflow" in path for path in files)
    assert _env(files["/etc/mdp/host.env"])["MDP_RESTART_UNITS"] == "mdp-dashboard"
    assert ["systemctl", "enable", "--now", "mdp-dashboard.service"] in doc["runcmd"]
    assert snowflake_settings(_env(files["/etc/mdp/dashboard.env"]))["user"] == "DASHBOARD_SVC"
    # Least privilege: the artifacts, the dashboard's key, the stack key through services only.
    arn = run.outputs[outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN]
    statements = {s["Sid"]: s for s in _statements(run, "dashboard")}
    assert set(statements) == {
        "UseKeyThroughServices",
        "ReadArtifacts",
        "ReadArtifactPointer",
        "ReadDashboardKey",
    }
    assert statements["ReadDashboardKey"]["Resource"] == arn
    assert statements["UseKeyThroughServices"]["Action"] == "kms:Decrypt"
    assert "kms:ViaService" in statements["UseKeyThroughServices"]["Condition"]["StringEquals"]
    violations = evaluate(sf_prod.resources, Context(production=True))
    assert violations == [], "\n".join(map(str, violations))
    priced = estimate([PlannedResource(host.type, host.name, host.plain, "dashboard", host.id)])
    ours = {line.item for line in priced.lines if line.component == "dashboard"}
    assert ours == {"EC2 t3.micro", "EBS gp3 root"}


def test_ec2_stacks_serve_the_dashboard_from_the_airflow_host_only(
    sf_dev: SnowflakeRun, dev: ProgramRun
) -> None:
    run = sf_dev.run
    assert [i.name for i in run.of_type(EC2)] == ["generator-instance", "airflow-instance"]
    assert run.outputs[outputs.DASHBOARD_INSTANCE_ID] == run.outputs[outputs.AIRFLOW_INSTANCE_ID]
    assert outputs.DASHBOARD_INSTANCE_ID not in dev.outputs
