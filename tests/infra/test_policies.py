"""Security and reliability rules: the real program passes them, and a bad resource is caught by each."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from infra.mockrun import ProgramRun, run_program
from infra.policies.rules import Context, Resource, all_rules, evaluate
from infra.policies.rules import aws as r
from mdp.plan import PLAN_EXAMPLES, PLAN_SECRETS


def _resources(run: ProgramRun) -> list[Resource]:
    return [Resource(x.type, x.name, x.props, x.protect) for x in run.resources if x.custom]


def test_there_are_at_least_25_rules_each_naming_its_sources() -> None:
    rules = all_rules()
    assert len(rules) >= 25
    for rule in rules:
        assert rule.sources, f"{rule.name} names no source rule"


def test_program_passes_every_rule(each_stack: ProgramRun) -> None:
    violations = evaluate(_resources(each_stack), Context(production=each_stack.stack == "prod"))
    assert violations == [], "\n".join(map(str, violations))


def test_every_resource_rule_applies_to_something_in_the_program(prod: ProgramRun) -> None:
    # With the Snowflake and Airbyte sections `mdp plan` fills in, so every component is there.
    # And alerts, which no committed stack configures.
    planned = run_program(
        "dev",
        overrides={**PLAN_EXAMPLES["dev"], "mdp:alerts": {"emails": ["ops@example.com"]}},
        secrets={
            **PLAN_SECRETS,
            "mdp:alerts": json.dumps(
                {"emails": ["ops@example.com"], "webhookUrl": "https://hooks.example.com/x"}
            ),
        },
    )
    # Prod adds what only the MWAA engine declares.
    types = {x.type for x in planned.resources} | {x.type for x in prod.resources}
    # Present, listed for clarity; and a rule that forbids a type the program must never declare.
    optional = {"default-security-group-closed", "snowflake-no-ownership-transfers"}
    for rule in all_rules():
        if rule.types and not (set(rule.types) & types) and rule.name not in optional:
            pytest.fail(f"{rule.name} checks {rule.types}, none of which the program declares")


def _props(run: ProgramRun, type_: str, name_contains: str = "") -> dict[str, Any]:
    return copy.deepcopy(run.one(type_, name_contains).props)


def _prod_props(
    prod: ProgramRun, prod_ec2: ProgramRun, type_: str, name_contains: str
) -> dict[str, Any]:
    """From prod as committed (MWAA); the Airflow host's resources from prod on the EC2 engine."""
    found = [x for x in prod.of_type(type_) if name_contains in x.name]
    return _props(prod if found else prod_ec2, type_, name_contains)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(p: dict[str, Any]) -> None:
        node = p
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    return mutate


def _open_to_the_world(from_port: int, to_port: int) -> Callable[[dict[str, Any]], None]:
    def mutate(p: dict[str, Any]) -> None:
        p["ingress"] = [
            {
                "protocol": "tcp",
                "fromPort": from_port,
                "toPort": to_port,
                "cidrBlocks": ["0.0.0.0/0"],
                "description": "x",
            }
        ]

    return mutate


def _open_pg_rule(p: dict[str, Any]) -> None:
    p.pop("referencedSecurityGroupId", None)
    p["cidrIpv4"] = "0.0.0.0/0"


def _drop_param(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(p: dict[str, Any]) -> None:
        p["parameters"] = [x for x in p["parameters"] if x["name"] != name]

    return mutate


def _policy_doc(
    mutate_statement: Callable[[dict[str, Any]], None],
) -> Callable[[dict[str, Any]], None]:
    def mutate(p: dict[str, Any]) -> None:
        doc = json.loads(p["policy"])
        mutate_statement(doc["Statement"][0])
        p["policy"] = json.dumps(doc)

    return mutate


def _wildcard_secret(s: dict[str, Any]) -> None:
    s["Action"] = "secretsmanager:GetSecretValue"
    s["Resource"] = "*"


def _wildcard_action(s: dict[str, Any]) -> None:
    s["Action"] = "s3:*"


def _mwaa_secret_prefix(p: dict[str, Any]) -> None:
    # A prefix wildcard over this stack's secrets: still broader than the secrets it needs.
    doc = json.loads(p["policy"])
    (read,) = [s for s in doc["Statement"] if s["Sid"] == "ReadAirflowSecrets"]
    read["Resource"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mdp/prod/airflow/*"
    p["policy"] = json.dumps(doc)


def _any_principal(p: dict[str, Any]) -> None:
    doc = json.loads(p["assumeRolePolicy"])
    doc["Statement"][0]["Principal"] = {"AWS": "*"}
    p["assumeRolePolicy"] = json.dumps(doc)


def _password_in_user_data(p: dict[str, Any]) -> None:
    p["userData"] += "\nwrite_files:\n- path: /etc/x\n  content: PGPASSWORD=hunter2hunter2\n"


def _key_in_user_data(p: dict[str, Any]) -> None:
    p["userData"] += "\n# -----" + "BEGIN RSA PRIVATE KEY-----\n"


def _allow_insecure(p: dict[str, Any]) -> None:
    doc = json.loads(p["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Effect") != "Deny"]
    p["policy"] = json.dumps(doc)


SG, RDS, EC2, PG = r.SG, r.RDS, r.EC2, r.RDS_PARAMS

# (rule, its source IDs, resource type, name filter, bad change, production?)
NEGATIVE_CASES: list[tuple[str, str, str, str, Callable[[dict[str, Any]], None], bool]] = [
    (
        "no-internet-ingress-to-admin-ports",
        "CKV_AWS_24 / AVD-AWS-0107 / EC2.13",
        SG,
        "generator",
        _open_to_the_world(22, 22),
        False,
    ),
    (
        "no-internet-ingress-to-admin-ports",
        "EC2.19 (8080 in a port range)",
        SG,
        "airflow",
        _open_to_the_world(8000, 8100),
        False,
    ),
    (
        "no-internet-ingress-to-admin-ports",
        "AVD-AWS-0107 (5432 rule resource)",
        r.SG_INGRESS_RULE,
        "db-ingress",
        _open_pg_rule,
        False,
    ),
    (
        "security-group-rules-described",
        "CKV_AWS_23 / AVD-AWS-0124",
        SG,
        "generator",
        _set("description", ""),
        False,
    ),
    (
        "default-security-group-closed",
        "CKV2_AWS_12 / EC2.2",
        r.DEFAULT_SG,
        "",
        _set("ingress", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]),
        False,
    ),
    (
        "subnet-no-auto-public-ip",
        "CKV_AWS_130 / EC2.15",
        r.SUBNET,
        "public-a",
        _set("mapPublicIpOnLaunch", True),
        False,
    ),
    (
        "rds-not-public",
        "CKV_AWS_17 / AVD-AWS-0180 / RDS.2",
        RDS,
        "",
        _set("publiclyAccessible", True),
        False,
    ),
    (
        "rds-encrypted",
        "CKV_AWS_16 / AVD-AWS-0080 / RDS.3",
        RDS,
        "",
        _set("storageEncrypted", False),
        False,
    ),
    (
        "rds-backup-retention",
        "CKV_AWS_133 / AVD-AWS-0077 / RDS.11",
        RDS,
        "",
        _set("backupRetentionPeriod", 1),
        False,
    ),
    ("rds-final-snapshot", "mdp final snapshot", RDS, "", _set("skipFinalSnapshot", True), False),
    (
        "rds-deletion-protection-in-prod",
        "CKV_AWS_293 / RDS.8",
        RDS,
        "",
        _set("deletionProtection", False),
        True,
    ),
    ("rds-multi-az-in-prod", "CKV_AWS_157 / RDS.5", RDS, "", _set("multiAz", False), True),
    (
        "rds-logs-exported",
        "CKV_AWS_129 / RDS.9",
        RDS,
        "",
        _set("enabledCloudwatchLogsExports", []),
        False,
    ),
    (
        "rds-iam-auth",
        "CKV_AWS_161 / RDS.10",
        RDS,
        "",
        _set("iamDatabaseAuthenticationEnabled", False),
        False,
    ),
    (
        "rds-auto-minor-upgrade",
        "CKV_AWS_226 / RDS.13",
        RDS,
        "",
        _set("autoMinorVersionUpgrade", False),
        False,
    ),
    ("rds-enhanced-monitoring", "CKV_AWS_118", RDS, "", _set("monitoringInterval", 0), False),
    (
        "rds-copy-tags-to-snapshots",
        "CKV2_AWS_60 / RDS.17",
        RDS,
        "",
        _set("copyTagsToSnapshot", False),
        False,
    ),
    (
        "rds-managed-master-password",
        "mdp managed master password",
        RDS,
        "",
        _set("password", "12345"),
        False,
    ),
    ("postgres-force-ssl", "CKV2_AWS_69", PG, "", _drop_param("rds.force_ssl"), False),
    ("postgres-statement-logging", "CKV2_AWS_30", PG, "", _drop_param("log_statement"), False),
    (
        "ec2-imdsv2",
        "CKV_AWS_79 / AVD-AWS-0028 / EC2.8",
        EC2,
        "generator",
        _set("metadataOptions.httpTokens", "optional"),
        False,
    ),
    (
        "ec2-root-volume-encrypted",
        "CKV_AWS_8 / AVD-AWS-0131 / EC2.3",
        EC2,
        "airflow",
        _set("rootBlockDevice.encrypted", False),
        False,
    ),
    (
        "ec2-no-secrets-in-user-data",
        "CKV_AWS_46 / AVD-AWS-0029 (password)",
        EC2,
        "generator",
        _password_in_user_data,
        False,
    ),
    (
        "ec2-no-secrets-in-user-data",
        "CKV_AWS_46 / AVD-AWS-0029 (private key)",
        EC2,
        "airflow",
        _key_in_user_data,
        False,
    ),
    ("ec2-ebs-optimized", "CKV_AWS_135", EC2, "airflow", _set("ebsOptimized", False), False),
    ("ec2-detailed-monitoring", "CKV_AWS_126", EC2, "airflow", _set("monitoring", False), True),
    (
        "ec2-instance-profile",
        "CKV2_AWS_41 / SSM.1",
        EC2,
        "generator",
        _set("iamInstanceProfile", None),
        False,
    ),
    (
        "ec2-no-ssh-key-pair",
        "mdp SSM-only admin",
        EC2,
        "airflow",
        _set("keyName", "my-laptop"),
        False,
    ),
    (
        "kms-key-rotation",
        "CKV_AWS_7 / AVD-AWS-0065 / KMS.4",
        r.KMS_KEY,
        "",
        _set("enableKeyRotation", False),
        False,
    ),
    (
        "log-group-encrypted",
        "CKV_AWS_158 / AVD-AWS-0017",
        r.LOG_GROUP,
        "flow-logs",
        _set("kmsKeyId", None),
        False,
    ),
    (
        "log-group-retention",
        "CKV_AWS_66",
        r.LOG_GROUP,
        "flow-logs",
        _set("retentionInDays", 0),
        False,
    ),
    (
        "log-group-retention",
        "CKV_AWS_338 / CloudWatch.16 (prod)",
        r.LOG_GROUP,
        "postgresql-logs",
        _set("retentionInDays", 30),
        True,
    ),
    (
        "secret-encrypted-with-cmk",
        "CKV_AWS_149 / AVD-AWS-0098",
        r.SECRET,
        "replication",
        _set("kmsKeyId", None),
        False,
    ),
    (
        "s3-public-access-blocked",
        "CKV_AWS_53..56 / AVD-AWS-0086 / S3.8",
        r.PAB,
        "exports",
        _set("restrictPublicBuckets", False),
        False,
    ),
    (
        "s3-default-encryption",
        "CKV_AWS_19 / CKV_AWS_145 / AVD-AWS-0088",
        r.SSE,
        "exports",
        _set("rules", []),
        False,
    ),
    (
        "s3-versioning",
        "CKV_AWS_21 / AVD-AWS-0090 / S3.14",
        r.VERSIONING,
        "exports",
        _set("versioningConfiguration.status", "Suspended"),
        False,
    ),
    ("s3-tls-only", "S3.5", r.BUCKET_POLICY, "exports", _allow_insecure, False),
    (
        "s3-acls-disabled",
        "CKV2_AWS_65 / S3.12",
        r.OWNERSHIP,
        "exports",
        _set("rule.objectOwnership", "ObjectWriter"),
        False,
    ),
    (
        "iam-no-wildcard-actions",
        "CKV_AWS_62 / CKV_AWS_290 / AVD-AWS-0057 / IAM.21",
        r.ROLE_POLICY,
        "airflow-policy",
        _policy_doc(_wildcard_action),
        False,
    ),
    (
        "iam-secrets-named",
        "CKV_AWS_355 / CKV_AWS_288",
        r.ROLE_POLICY,
        "generator-policy",
        _policy_doc(_wildcard_secret),
        False,
    ),
    ("iam-trust-no-wildcard-principal", "CKV_AWS_60", r.ROLE, "generator", _any_principal, False),
    (
        "mwaa-private-webserver",
        "MWAA.3",
        r.MWAA,
        "",
        _set("webserverAccessMode", "PUBLIC_ONLY"),
        False,
    ),
    ("mwaa-kms-key", "mdp", r.MWAA, "", _set("kmsKey", None), False),
    (
        "mwaa-logs-on",
        "MWAA.4",
        r.MWAA,
        "",
        _set("loggingConfiguration.workerLogs.enabled", False),
        False,
    ),
    (
        "mwaa-secrets-named",
        "CKV_AWS_355",
        r.ROLE_POLICY,
        "mwaa-execution-policy",
        _mwaa_secret_prefix,
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule_name", "sources", "type_", "name", "mutate", "production"),
    NEGATIVE_CASES,
    ids=[f"{c[0]}[{c[1]}]" for c in NEGATIVE_CASES],
)
def test_rule_catches_a_bad_resource(
    prod: ProgramRun,
    prod_ec2: ProgramRun,
    rule_name: str,
    sources: str,
    type_: str,
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    production: bool,
) -> None:
    rule = {x.name: x for x in all_rules()}[rule_name]
    context = Context(production=production)
    good = _prod_props(prod, prod_ec2, type_, name)
    assert rule(type_, good, context) == [], f"the program's own {type_} already fails {rule_name}"
    bad = copy.deepcopy(good)
    mutate(bad)
    assert rule(type_, bad, context), f"{rule_name} did not catch the bad {type_}"
    for source in sources.split(" / "):
        assert any(
            source.split(" ")[0].split("..")[0] in s for s in rule.sources
        ) or source.startswith("mdp")


class _ReadOnlyMapping(Mapping[str, Any]):
    """Stands in for the policy engine's props proxies: a Mapping and Sequences, not dicts and lists."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = {k: _freeze(v) for k, v in data.items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _ReadOnlyMapping(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def test_rules_read_the_policy_engines_read_only_props(
    prod: ProgramRun, prod_ec2: ProgramRun
) -> None:
    rules = {x.name: x for x in all_rules()}
    for rule_name, _, type_, name, mutate, production in NEGATIVE_CASES:
        bad = _prod_props(prod, prod_ec2, type_, name)
        mutate(bad)
        frozen = _ReadOnlyMapping(bad)
        assert rules[rule_name](type_, frozen, Context(production=production)), rule_name


def test_negative_cases_cover_at_least_25_distinct_rules() -> None:
    assert len({c[0] for c in NEGATIVE_CASES}) >= 25


def test_vpc_without_flow_log_is_caught(dev: ProgramRun) -> None:
    resources = [x for x in _resources(dev) if x.type != r.FLOW_LOG]
    found = evaluate(resources)
    assert any(v.rule == "vpc-flow-logs" for v in found)


@pytest.mark.parametrize("missing", [r.PAB, r.SSE, r.VERSIONING, r.BUCKET_POLICY, r.LOGGING])
def test_bucket_missing_a_hardening_resource_is_caught(dev: ProgramRun, missing: str) -> None:
    # CKV_AWS_18 / CKV2_AWS_6 / S3.9 / S3.8: every bucket carries its hardening resources.
    resources = [x for x in _resources(dev) if not (x.type == missing and "exports" in x.name)]
    found = [v for v in evaluate(resources) if v.rule == "s3-bucket-hardened"]
    assert found and all("exports" in v.resource for v in found)


def test_plain_output_with_a_credential_is_caught(dev: ProgramRun) -> None:
    assert r.output_violations(dev.outputs, dev.secret_outputs) == []
    leaked = dict(dev.outputs)
    assert r.output_violations(leaked, set()) != [], (
        "the replication URI must be recognised as a credential"
    )


def test_a_public_mwaa_source_bucket_is_caught(prod: ProgramRun) -> None:
    rule = {x.name: x for x in all_rules()}["mwaa-source-bucket-private"]
    resources = _resources(prod)
    assert rule.on_stack(resources, Context(production=True)) == []
    opened = [
        Resource(x.type, x.name, {**x.props, "restrictPublicBuckets": False}, x.protect)
        if x.type == r.PAB and "mwaa-source" in x.name
        else x
        for x in resources
    ]
    found = rule.on_stack(opened, Context(production=True))
    assert [v.resource for v in found] == ["storage-mwaa-source"]
    assert "restrictPublicBuckets" in found[0].message
    # Without its public access block at all, too.
    dropped = [x for x in resources if not (x.type == r.PAB and "mwaa-source" in x.name)]
    assert rule.on_stack(dropped, Context(production=False))
