"""The program under mocks: both stacks, secrets kept secret, least privilege, cloud-init, prod safety."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra import outputs
from infra.config_errors import ConfigError
from infra.mockrun import DELETE, ProgramRun, run_program, walk_strings
from mdp.plan import PLAN_EXAMPLES, PLAN_SECRETS
from orchestration.include import settings

EC2 = "aws:ec2/instance:Instance"
RDS = "aws:rds/instance:Instance"

# The cloud-config keys the hosts use, typed as cloud-init's schema types them.
CLOUD_CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "package_update": {"type": "boolean"},
        "packages": {"type": "array", "items": {"type": "string"}},
        "users": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"const": "default"},
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "system": {"type": "boolean"},
                            "shell": {"type": "string"},
                            "homedir": {"type": "string"},
                            "lock_passwd": {"type": "boolean"},
                            "ssh_authorized_keys": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ]
            },
        },
        "write_files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "content"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "pattern": "^/"},
                    "content": {"type": "string"},
                    "owner": {"type": "string"},
                    "permissions": {"type": "string", "pattern": "^0[0-7]{3}$"},
                },
            },
        },
        "runcmd": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "swap": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "filename": {"type": "string", "pattern": "^/"},
                "size": {"type": "integer", "minimum": 0},
                "maxsize": {"type": "integer", "minimum": 0},
            },
        },
    },
}


def _user_data(run: ProgramRun, host: str) -> str:
    return str(run.one(EC2, host).props["userData"])


def _secret_values(run: ProgramRun) -> list[str]:
    """Every secret the mocks generated (passwords, private keys) and every secret config value."""
    values = list(run.secret_config.values())
    for res in run.resources:
        if res.type == "random:index/randomPassword:RandomPassword":
            values.append(res.outputs["result"])
        if res.type == "tls:index/privateKey:PrivateKey":
            values += [res.outputs["privateKeyPem"], res.outputs["privateKeyOpenssh"]]
    return [v for v in values if v]


@pytest.mark.parametrize("host", ["generator", "airflow"])
def test_cloud_init_is_valid_cloud_config(
    each_ec2_stack: ProgramRun, host: str, tmp_path: Path
) -> None:
    text = _user_data(each_ec2_stack, host)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    jsonschema.validate(doc, CLOUD_CONFIG_SCHEMA)
    if shutil.which("cloud-init"):
        path = tmp_path / "user-data.yaml"
        path.write_text(text)
        result = subprocess.run(
            ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("host", ["generator", "airflow"])
def test_user_data_fits_the_ec2_limit(each_ec2_stack: ProgramRun, host: str) -> None:
    # EC2 rejects user data above 16 KB (before base64).
    assert len(_user_data(each_ec2_stack, host).encode()) < 16 * 1024


def test_cloud_init_schema_check_rejects_a_bad_document() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"write_files": [{"path": "relative", "content": "x"}]}, CLOUD_CONFIG_SCHEMA
        )


@pytest.mark.parametrize("host", ["generator", "airflow"])
def test_no_secret_value_in_user_data(each_ec2_stack: ProgramRun, host: str) -> None:
    text = _user_data(each_ec2_stack, host)
    secrets = _secret_values(each_ec2_stack)
    assert secrets, "the mocks should have generated secrets to look for"
    for value in secrets:
        assert value not in text
    assert "MOCKSECRET" not in text


def test_generator_runs_every_two_hours_and_reads_credentials_at_run_time(dev: ProgramRun) -> None:
    doc = yaml.safe_load(_user_data(dev, "generator"))
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert "OnCalendar=*-*-* 00/2:00:00" in files["/etc/systemd/system/mdp-generator.timer"]
    assert "secretsmanager get-secret-value" in files["/usr/local/bin/mdp-generate"]
    env = files["/etc/mdp/host.env"]
    assert f"MDP_DB_SECRET_ARN={shlex.quote(dev.outputs[outputs.DB_MASTER_SECRET_ARN])}" in env
    assert ["systemctl", "enable", "--now", "mdp-generator.timer"] in doc["runcmd"]
    tunnel = next(u for u in doc["users"] if isinstance(u, dict) and u["name"] == "airbyte")
    assert tunnel["shell"] == "/sbin/nologin"
    assert tunnel["ssh_authorized_keys"][0].startswith("restrict,port-forwarding,permitopen=")


def test_airflow_uses_the_lock_file_and_the_secrets_manager_backend(dev: ProgramRun) -> None:
    doc = yaml.safe_load(_user_data(dev, "airflow"))
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert "uv sync --frozen --no-dev" in files["/usr/local/bin/mdp-sync-artifact"].replace(
        "\\\n  ", ""
    )
    airflow_env = files["/etc/mdp/airflow.env"]
    assert "SecretsManagerBackend" in airflow_env
    assert "mdp/dev/airflow/connections" in airflow_env
    assert "AIRFLOW__API__HOST=127.0.0.1" in airflow_env
    assert "MDP_TARGET=cloud" in airflow_env
    exports = dev.outputs[outputs.EXPORTS_BUCKET]
    assert f"MDP_EXPORTS_TARGET=s3://{exports}/exports" in airflow_env
    writes = next(
        s for s in _policy(dev, "airflow")["Statement"] if s["Sid"] == "WriteParquetExports"
    )
    assert writes["Resource"] == f"arn:aws:s3:::{exports}/exports/*"
    host_env = files["/etc/mdp/host.env"]
    assert "apache-airflow-providers-amazon==" in host_env
    assert "MDP_BUILD_COMMAND='-m orchestration.include.dbt'" in host_env
    # Airflow asks Secrets Manager only for the ids this program wrote (and may read).
    kwargs_line = next(
        line
        for line in airflow_env.splitlines()
        if line.startswith("AIRFLOW__SECRETS__BACKEND_KWARGS=")
    )
    kwargs = json.loads(shlex.split(kwargs_line.split("=", 1)[1])[0])
    assert re.fullmatch(kwargs["variables_lookup_pattern"], "mdp_exports_bucket")
    assert not re.fullmatch(kwargs["variables_lookup_pattern"], "some_other_variable")
    assert kwargs["connections_lookup_pattern"] == "^$"  # none configured in this stack


def test_artifact_holds_the_lock_file_and_the_code(dev: ProgramRun) -> None:
    obj = dev.one("aws:s3/bucketObjectv2:BucketObjectv2")
    assert obj.props["key"] == dev.outputs[outputs.ARTIFACT_KEY]
    assert obj.props["serverSideEncryption"] == "aws:kms"
    param = dev.one("aws:ssm/parameter:Parameter")
    assert param.plain["value"] == obj.props["key"]


def test_credential_outputs_are_secret_and_the_rest_plain(each_stack: ProgramRun) -> None:
    for name in outputs.SECRET_OUTPUTS:
        assert each_stack.is_secret(name), f"{name} embeds a credential but is not secret"
    uri = each_stack.outputs[outputs.DB_REPLICATION_CONNECTION_URI]
    assert "MOCKSECRET-password" in uri  # it really embeds the password, hence secret
    for name in (outputs.DB_ENDPOINT, outputs.BASTION_PUBLIC_IP, outputs.DB_MASTER_SECRET_ARN):
        assert not each_stack.is_secret(name)
    for name, value in each_stack.outputs.items():
        if name not in each_stack.secret_outputs:
            assert "MOCKSECRET" not in json.dumps(value), f"plain output {name} leaks a secret"


def test_issue_outputs_are_exported(each_stack: ProgramRun) -> None:
    for name in (
        outputs.DB_ENDPOINT,
        outputs.DB_PORT,
        outputs.DB_NAME,
        outputs.DB_MASTER_SECRET_ARN,
        outputs.DB_REPLICATION_SECRET_ARN,
        outputs.BASTION_PUBLIC_IP,
        outputs.BASTION_PUBLIC_DNS,
        outputs.AIRFLOW_ENGINE,
        outputs.EXPORTS_BUCKET,
        outputs.ARTIFACT_BUCKET,
    ):
        assert each_stack.outputs.get(name), f"{name} is not exported"
    engine = each_stack.outputs[outputs.AIRFLOW_ENGINE]
    engine_outputs = {
        "ec2": (outputs.AIRFLOW_INSTANCE_ID,),
        "mwaa": (
            outputs.MWAA_ENVIRONMENT_NAME,
            outputs.MWAA_WEBSERVER_URL,
            outputs.MWAA_OBJECT_VERSIONS,
        ),
    }
    for name in engine_outputs[engine]:
        assert each_stack.outputs.get(name), f"{name} is not exported on {engine}"


def _policy(run: ProgramRun, host: str) -> dict:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy", f"{host}-policy").props["policy"])


def test_generator_reads_only_the_two_database_secrets(dev: ProgramRun) -> None:
    statements = _policy(dev, "generator")["Statement"]
    reads = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert len(reads) == 1
    assert sorted(reads[0]["Resource"]) == sorted(
        [dev.outputs[outputs.DB_MASTER_SECRET_ARN], dev.outputs[outputs.DB_REPLICATION_SECRET_ARN]]
    )
    artifacts = next(s for s in statements if s["Action"] == "s3:GetObject")
    assert artifacts["Resource"].endswith("/artifacts/*")


@pytest.mark.parametrize("host", ["generator", "airflow"])
def test_hosts_get_session_manager_without_account_wide_parameter_reads(
    dev: ProgramRun, host: str
) -> None:
    attached = [
        r.props.get("policyArn")
        for r in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert not any("AmazonSSMManagedInstanceCore" in str(a) for a in attached)
    agent = json.loads(dev.named(f"{host}-ssm-agent").props["policy"])["Statement"][0]
    assert "ssmmessages:OpenDataChannel" in agent["Action"]
    assert not any(
        a.startswith(("ssm:GetParameter", "secretsmanager:", "s3:")) for a in agent["Action"]
    )
    reads = [
        s
        for s in _policy(dev, host)["Statement"]
        if "ssm:GetParameter" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert [s["Resource"] for s in reads] == [dev.named("storage-artifact-key").outputs["arn"]]


def test_airflow_reads_only_its_backend_secrets(dev: ProgramRun) -> None:
    statements = _policy(dev, "airflow")["Statement"]
    reads = next(s for s in statements if s["Action"] == "secretsmanager:GetSecretValue")
    backend = [
        r.outputs["arn"]
        for r in dev.of_type("aws:secretsmanager/secret:Secret")
        if r.props["name"].startswith("mdp/dev/airflow/")
    ]
    assert backend and sorted(reads["Resource"]) == sorted(backend)
    for s in statements:
        for res in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
            # PutMetricData takes no resource ARN: its namespace condition scopes it instead.
            assert res != "*" or (
                s["Action"] == "cloudwatch:PutMetricData"
                and s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}
            ), s


def test_admin_cidrs_open_ssh_to_the_admin_only() -> None:
    run = run_program("dev", overrides={"mdp:aws.adminCidrs": ["198.51.100.7/32"]})
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "generator")
    assert "198.51.100.7/32" in {c for rule in sg.props["ingress"] for c in rule["cidrBlocks"]}


def test_ssh_only_from_configured_cidrs(dev: ProgramRun) -> None:
    sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "generator")
    cidrs = {c for rule in sg.props["ingress"] for c in rule["cidrBlocks"]}
    configured = json.loads(dev.config["mdp:aws"])["airbyteCidrs"]
    assert cidrs == set(configured) and len(configured) >= 3
    assert {rule["fromPort"] for rule in sg.props["ingress"]} == {22}
    assert dev.one("aws:ec2/securityGroup:SecurityGroup", "airflow").props.get("ingress", []) == []


def test_dev_has_no_nat_gateway_and_prod_keeps_airflow_private(
    dev: ProgramRun, prod_ec2: ProgramRun
) -> None:
    assert dev.of_type("aws:ec2/natGateway:NatGateway") == []
    assert dev.one(EC2, "airflow").props["associatePublicIpAddress"] is True
    prod = prod_ec2
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 1
    airflow = prod.one(EC2, "airflow").props
    assert airflow["associatePublicIpAddress"] is False
    private = {r.id for r in prod.of_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    assert len(private) == 2 and airflow["subnetId"] in private


def test_rds_logs_go_to_encrypted_groups_with_retention(each_stack: ProgramRun) -> None:
    db = each_stack.one(RDS)
    groups = {
        g.props["name"]: g.props for g in each_stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    for log in db.props["enabledCloudwatchLogsExports"]:
        group = groups[f"/aws/rds/instance/{db.props['identifier']}/{log}"]
        assert group["kmsKeyId"] and group["retentionInDays"] > 0


def test_airflow_egress_ip_is_stable_for_snowflakes_network_policy(
    dev: ProgramRun, prod: ProgramRun
) -> None:
    eip = dev.named("network-airflow-eip")
    assert dev.outputs[outputs.AIRFLOW_EGRESS_IP] == eip.outputs["publicIp"]
    association = dev.named("airflow-eip-association")
    assert association.props["allocationId"] == eip.id
    assert association.props["instanceId"] == dev.outputs[outputs.AIRFLOW_INSTANCE_ID]
    nat_eip = prod.named("network-nat-eip")
    assert prod.outputs[outputs.AIRFLOW_EGRESS_IP] == nat_eip.outputs["publicIp"]
    assert [r for r in prod.resources if r.name == "airflow-eip-association"] == []


def test_prod_protects_the_database_and_buckets(dev: ProgramRun, prod: ProgramRun) -> None:
    db = prod.one(RDS)
    assert db.protect and db.props["deletionProtection"] and db.props["multiAz"]
    assert prod.one("aws:kms/key:Key").protect
    assert db.props["finalSnapshotIdentifier"].startswith("mdp-prod-source-final-")
    assert all(b.protect for b in prod.of_type("aws:s3/bucket:Bucket"))
    assert not dev.one(RDS).protect


def test_parameter_group_adds_logical_replication_only_when_asked() -> None:
    run = run_program("dev", overrides={"mdp:aws.database.logicalReplication": True})
    params = {
        p["name"] for p in run.one("aws:rds/parameterGroup:ParameterGroup").props["parameters"]
    }
    assert "rds.logical_replication" in params
    assert "MDP_LOGICAL_REPLICATION=true" in _user_data(run, "generator")


def test_components_parent_their_children(dev: ProgramRun) -> None:
    for component in [r for r in dev.resources if r.type.startswith("mdp:")]:
        children = dev.children_of(component)
        assert children, f"{component.type} has no children"
        assert all(c.name.startswith(f"{component.name}-") for c in children)


def test_secret_values_are_passed_as_secrets(each_stack: ProgramRun) -> None:
    versions = each_stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    holding_secrets = [v for v in versions if "MOCKSECRET" in json.dumps(v.props)]
    assert holding_secrets, "the replication password and tunnel key are stored in Secrets Manager"
    for version in holding_secrets:
        assert "secretString" in version.secret_inputs, version.name


def test_no_secret_value_in_any_plain_input(each_stack: ProgramRun) -> None:
    # Secrets may flow only into secret inputs (SecretVersion values); never into names, tags, policies.
    secrets = _secret_values(each_stack)
    for res in each_stack.resources:
        if res.type in ("aws:secretsmanager/secretVersion:SecretVersion",):
            continue
        for text in walk_strings(res.inputs):
            for value in secrets:
                assert value not in text, f"{res.type} {res.name} carries a secret value"


def test_bad_config_fails_before_any_resource_with_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        run_program(
            "dev",
            overrides={
                "mdp:aws.adminCidrs": ["0.0.0.0/0"],
                "mdp:aws.database.instanceClass": "t3.micro",
                "mdp:aws.databse": {},
            },
        )
    message = str(err.value)
    assert "no resource was declared" in message
    assert (
        "mdp:aws.adminCidrs[0]" in message
        and "pulumi config set --path 'aws.adminCidrs[0]'" in message
    )
    assert "mdp:aws.database.instanceClass" in message and "db.t4g.micro" in message
    assert "unknown key (did you mean 'database'?)" in message
    assert "pulumi config rm --path 'aws.databse' --stack dev" in message


def test_prod_refuses_to_run_without_its_safety_settings() -> None:
    with pytest.raises(ConfigError) as err:
        run_program(
            "prod", overrides={"mdp:aws.database.multiAz": False, "mdp:aws.protect": DELETE}
        )
    message = str(err.value)
    assert "pulumi config set --path 'aws.database.multiAz' true --stack prod" in message
    assert "pulumi config set --path 'aws.protect' true --stack prod" in message


def test_missing_region_names_the_provider_key() -> None:
    with pytest.raises(ConfigError) as err:
        run_program("dev", overrides={"aws:region": DELETE})
    assert "pulumi config set aws:region us-east-1 --stack dev" in str(err.value)


def test_the_airflow_ids_the_program_writes_are_the_ones_the_dag_reads() -> None:
    # Both sides take the ids from core/connections.py; the DAG reads them through its settings.
    run = run_program("dev", overrides=PLAN_EXAMPLES["dev"], secrets=PLAN_SECRETS)
    written = {
        r.props["name"]
        for r in run.of_type("aws:secretsmanager/secret:Secret")
        if r.props["name"].startswith("mdp/dev/airflow/")
    }
    assert {
        f"mdp/dev/airflow/connections/{settings.SNOWFLAKE_CONN_ID}",
        f"mdp/dev/airflow/connections/{settings.AIRBYTE_CONN_ID}",
        f"mdp/dev/airflow/variables/{settings.AIRBYTE_CONNECTION_ID_VARIABLE}",
    } <= written
