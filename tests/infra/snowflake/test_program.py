"""The program's Snowflake objects, for both stacks, under Pulumi mocks."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest

from infra import outputs
from infra.config_errors import ConfigError
from infra.mockrun import Resolved, walk_strings
from infra.policies.rules import snowflake as rules
from infra.policies.rules.snowflake import expected_grants, grants_match_matrix, infer_prefix
from infra.snowflake import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake.config import SnowflakeConfig
from tests.infra.snowflake.conftest import (
    ACCOUNT_LOCATOR,
    DBT_CIDR,
    SnowflakeRun,
    current_key,
    run_component,
    run_snowflake,
    snowflake_violations,
)

ACCOUNT_LEVEL = (
    rules.DATABASE,
    rules.ACCOUNT_ROLE,
    rules.WAREHOUSE,
    rules.SERVICE_USER,
    rules.RESOURCE_MONITOR,
    rules.NETWORK_POLICY,
)


def _names(run: SnowflakeRun, type_: str) -> set[str]:
    return {str(r.props["name"]) for r in run.of_type(type_)}


def test_every_rule_passes_on_both_stacks(sf_stack: SnowflakeRun) -> None:
    assert snowflake_violations(sf_stack.resources, sf_stack.run.stack) == []


def test_databases_and_schemas(sf_dev: SnowflakeRun, sf_prod: SnowflakeRun) -> None:
    for run, prefix in ((sf_dev, "DEV_"), (sf_prod, "")):
        assert _names(run, rules.DATABASE) == {
            f"{prefix}{db}" for db in ("RAW", "ANALYTICS", "DBT_DEV", "ADMIN")
        }
        schemas = {
            (str(r.props["database"]), str(r.props["name"])) for r in run.of_type(rules.SCHEMA)
        }
        assert schemas == {
            (f"{prefix}RAW", "POSTGRES_AIRBYTE"),
            (f"{prefix}ADMIN", "NETWORK"),
            *(
                (f"{prefix}{db}", s)
                for db in ("ANALYTICS", "DBT_DEV")
                for s in ("STAGING", "INTERMEDIATE", "FINANCE")
            ),
        }
        assert all(r.props["withManagedAccess"] == "true" for r in run.of_type(rules.SCHEMA))
        assert all(r.props["dropPublicSchemaOnCreation"] for r in run.of_type(rules.DATABASE))


def test_dev_and_prod_share_no_account_level_name(
    sf_dev: SnowflakeRun, sf_prod: SnowflakeRun
) -> None:
    for type_ in ACCOUNT_LEVEL:
        dev, prod = _names(sf_dev, type_), _names(sf_prod, type_)
        assert dev and prod
        assert not dev & prod, f"{type_} names collide in a shared account: {dev & prod}"
        assert all(name.startswith("DEV_") for name in dev)


def test_a_dev_stack_with_its_own_account_uses_the_contract_names() -> None:
    run = run_snowflake("dev", namePrefix="", dedicatedAccount=True, accountName="MDP_DEV")
    assert _names(run, rules.DATABASE) == {"RAW", "ANALYTICS", "DBT_DEV", "ADMIN"}
    assert run.run.outputs[outputs.SNOWFLAKE_ACCOUNT] == "EXAMPLEORG-MDP_DEV"
    assert run.run.outputs[outputs.SNOWFLAKE_HOST] == "exampleorg-mdp-dev.snowflakecomputing.com"
    assert snowflake_violations(run.resources, "dev") == []


def test_protect_only_in_prod(sf_dev: SnowflakeRun, sf_prod: SnowflakeRun) -> None:
    for type_ in (rules.DATABASE, rules.SCHEMA):
        assert all(r.protect for r in sf_prod.of_type(type_))
        assert not any(r.protect for r in sf_dev.of_type(type_))


def test_grants_equal_the_matrix(sf_stack: SnowflakeRun) -> None:
    prefix = "DEV_" if sf_stack.run.stack == "dev" else ""
    assert infer_prefix(sf_stack.resources) == prefix
    assert grants_match_matrix.on_stack(sf_stack.resources) == []
    matrix = expected_grants(prefix)
    # Spot-check the matrix in its own words.
    assert ("CREATE TABLE", f"SCHEMA {prefix}RAW.POSTGRES_AIRBYTE") in matrix[
        f"{prefix}AIRBYTE_ROLE"
    ]
    assert not any(
        target.startswith(("SCHEMA", "DATABASE")) and "RAW" not in target
        for _, target in matrix[f"{prefix}AIRBYTE_ROLE"]
        if "WAREHOUSE" not in target
    )
    assert ("SELECT", f"FUTURE TABLES IN SCHEMA {prefix}ANALYTICS.FINANCE") in matrix[
        f"{prefix}REPORTER"
    ]
    assert {p for p, _ in matrix[f"{prefix}REPORTER"]} == {"USAGE", "SELECT"}


def test_raw_reads_survive_airbyte_recreating_tables(sf_dev: SnowflakeRun) -> None:
    future = [
        r.props["onSchemaObject"]["future"]
        for r in sf_dev.of_type(rules.GRANT_TO_DATABASE_ROLE)
        if "POSTGRES_AIRBYTE_READ" in str(r.props["databaseRoleName"])
        and "future" in (r.props.get("onSchemaObject") or {})
    ]
    # Airbyte creates tables only, so there are no views to read.
    assert {f["objectTypePlural"] for f in future} == {"TABLES"}
    assert all(f["inSchema"] == '"DEV_RAW"."POSTGRES_AIRBYTE"' for f in future)


def test_functional_roles_reach_sysadmin_and_no_admin_role_is_granted(
    sf_stack: SnowflakeRun,
) -> None:
    role_grants = sf_stack.of_type(rules.GRANT_ACCOUNT_ROLE)
    to_sysadmin = {str(r.props["roleName"]) for r in role_grants if r.props.get("parentRoleName")}
    assert to_sysadmin == _names(sf_stack, rules.ACCOUNT_ROLE)
    assert not {str(r.props["roleName"]) for r in role_grants} & rules.ADMIN_ROLES


def test_warehouses_cost_guard(sf_stack: SnowflakeRun) -> None:
    warehouses = sf_stack.of_type(rules.WAREHOUSE)
    assert len(warehouses) == 3
    monitor = sf_stack.of_type(rules.RESOURCE_MONITOR)
    assert len(monitor) == 1
    assert {r.props["resourceMonitor"] for r in warehouses} == {monitor[0].props["name"]}
    for wh in warehouses:
        assert wh.props["warehouseSize"] == "XSMALL"
        assert wh.props["autoSuspend"] == 60
        assert wh.props["autoResume"] == "true"
        assert wh.props["initiallySuspended"] is True
        assert wh.props["statementTimeoutInSeconds"] <= 4 * 3600
    expected_quota = 20 if sf_stack.run.stack == "dev" else 60
    assert monitor[0].props["creditQuota"] == expected_quota
    assert sorted(monitor[0].props["notifyTriggers"]) == [75, 90]
    assert monitor[0].props["suspendTrigger"] == 100


def test_service_users_sign_in_with_keys_from_their_networks(sf_dev: SnowflakeRun) -> None:
    users = {str(r.props["name"]): r for r in sf_dev.of_type(rules.SERVICE_USER)}
    assert set(users) == {"DEV_AIRBYTE_SVC", "DEV_DBT_SVC", "DEV_DASHBOARD_SVC"}
    for user in users.values():
        # Both key slots hold a key: the current one and the one before, for rotation.
        slots = [str(user.props["rsaPublicKey"]), str(user.props["rsaPublicKey2"])]
        for key in slots:
            assert key and "-----" not in key and "\n" not in key
        assert slots[0] != slots[1]
        assert "password" not in user.props
    assert users["DEV_AIRBYTE_SVC"].props["defaultRole"] == "DEV_AIRBYTE_ROLE"
    assert users["DEV_AIRBYTE_SVC"].props["defaultWarehouse"] == "DEV_LOADING_WH"
    assert users["DEV_DBT_SVC"].props["defaultRole"] == "DEV_DATA_ENGINEER"
    assert users["DEV_DASHBOARD_SVC"].props["defaultRole"] == "DEV_REPORTER"
    assert users["DEV_DASHBOARD_SVC"].props["defaultWarehouse"] == "DEV_REPORTING_WH"
    rules_by_name = {str(r.props["name"]): r for r in sf_dev.of_type(rules.NETWORK_RULE)}
    airbyte_ips = set(rules_by_name["AIRBYTE_SVC_INGRESS"].props["valueLists"])
    config_ips = set(json.loads(sf_dev.run.config["mdp:aws"])["airbyteCidrs"])
    assert airbyte_ips == config_ips
    # The Airflow host's Elastic IP (from the network component) plus the configured extra.
    eip = sf_dev.run.named("network-airflow-eip").outputs["publicIp"]
    assert rules_by_name["DBT_SVC_INGRESS"].props["valueLists"] == sorted([f"{eip}/32", DBT_CIDR])
    # The dashboard runs on the Airflow host only: its user gets that address and nothing more.
    assert rules_by_name["DASHBOARD_SVC_INGRESS"].props["valueLists"] == [f"{eip}/32"]
    keys = [k for k in sf_dev.of_type(rules.TLS_PRIVATE_KEY) if k.name.startswith("snowflake-")]
    assert len(keys) == 2 * 3 and all(k.props["rsaBits"] >= 2048 for k in keys)


def test_each_service_user_is_one_component_owning_its_parts(sf_dev: SnowflakeRun) -> None:
    run = sf_dev.run
    components = run.of_type("mdp:snowflake:ServiceUser")
    assert sorted(c.name for c in components) == [
        "snowflake-airbyte-svc", "snowflake-dashboard-svc", "snowflake-dbt-svc",
    ]  # fmt: skip
    platform = run.one("mdp:snowflake:SnowflakePlatform")
    for component in components:
        assert component.parent == platform.urn
        children = {r.type: r for r in run.children_of(component)}
        assert set(children) == {
            rules.NETWORK_RULE, rules.NETWORK_POLICY, rules.TLS_PRIVATE_KEY, rules.SERVICE_USER,
            rules.GRANT_ACCOUNT_ROLE, "aws:secretsmanager/secret:Secret", rules.SECRET_VERSION,
        }  # fmt: skip
        assert all(r.name.startswith(f"{component.name}-") for r in children.values())
        # The user's network policy allows exactly its own ingress rule.
        policy = children[rules.NETWORK_POLICY].inputs
        rule = children[rules.NETWORK_RULE].inputs
        assert policy["allowedNetworkRuleLists"] == [f'"DEV_ADMIN"."NETWORK"."{rule["name"]}"']
        assert children[rules.SERVICE_USER].inputs["networkPolicy"] == policy["name"]


def test_roles_users_and_policies_are_not_managed_as_sysadmin(sf_dev: SnowflakeRun) -> None:
    by_role: dict[str | None, set[str]] = {}
    for r in sf_dev.resources:
        by_role.setdefault(r.provider_role, set()).add(r.type)
    assert by_role["ACCOUNTADMIN"] == {rules.RESOURCE_MONITOR, rules.GRANT_TO_ACCOUNT_ROLE}
    assert {rules.ACCOUNT_ROLE, rules.SERVICE_USER, rules.NETWORK_POLICY} <= by_role[
        "SECURITYADMIN"
    ]
    assert {rules.DATABASE, rules.WAREHOUSE, rules.SCHEMA} <= by_role["SYSADMIN"]
    providers = [r for r in sf_dev.resources if r.type == rules.PROVIDER]
    assert {p.props["role"] for p in providers} == {"SYSADMIN", "SECURITYADMIN", "ACCOUNTADMIN"}


def test_private_keys_only_in_secrets_manager(sf_stack: SnowflakeRun) -> None:
    key_values = {
        str(r.outputs["privateKeyPemPkcs8"]) for r in sf_stack.run.of_type(rules.TLS_PRIVATE_KEY)
    }
    holders = {
        r.type
        for r in sf_stack.run.resources
        if r.type != rules.TLS_PRIVATE_KEY
        and any(k in s for s in walk_strings(r.inputs) for k in key_values)
    }
    assert holders == {rules.SECRET_VERSION}
    for version in sf_stack.run.of_type(rules.SECRET_VERSION):
        if not version.name.startswith("snowflake-"):
            continue
        # The engine stores it encrypted in the state.
        assert "secretString" in version.secret_inputs
        payload = json.loads(version.plain["secretString"])
        assert payload["private_key"] in key_values
        assert set(payload) == {
            "account", "host", "user", "role", "warehouse", "database", "schema", "private_key",
            "key_generation",
        }  # fmt: skip
    for name, value in sf_stack.run.outputs.items():
        assert not any(k in s for s in walk_strings(value) for k in key_values), name
    assert (
        rules.private_key_outputs_are_secret(
            {
                name: (value, sf_stack.run.is_secret(name))
                for name, value in sf_stack.run.outputs.items()
            }
        )
        == []
    )


def test_airflow_connection_signs_dbt_in_with_its_key(sf_dev: SnowflakeRun) -> None:
    version = sf_dev.run.named("airflow-connection-snowflake-dbt-value")
    assert "secretString" in version.secret_inputs
    conn = json.loads(version.plain["secretString"])
    dbt_key = current_key(sf_dev.run, "dbt").outputs["privateKeyPemPkcs8"]
    extra = conn["extra"]
    assert base64.b64decode(extra.pop("private_key_content")).decode() == dbt_key
    assert conn["conn_type"] == "snowflake" and conn["login"] == "DEV_DBT_SVC"
    assert extra == {
        "account": "EXAMPLEORG-MDP",
        "database": "DEV_ANALYTICS",
        "warehouse": "DEV_TRANSFORMING_WH",
        "role": "DEV_DATA_ENGINEER",
    }
    secret = sf_dev.run.named("airflow-connection-snowflake-dbt")
    assert secret.inputs.get("kmsKeyId"), "the connection secret is not encrypted with the CMK"


def test_outputs(sf_dev: SnowflakeRun) -> None:
    out = sf_dev.run.outputs
    assert out[outputs.SNOWFLAKE_ACCOUNT] == "EXAMPLEORG-MDP"
    assert out[outputs.SNOWFLAKE_ACCOUNT_LOCATOR] == ACCOUNT_LOCATOR
    assert out[outputs.SNOWFLAKE_HOST] == "exampleorg-mdp.snowflakecomputing.com"
    assert out[outputs.SNOWFLAKE_RAW_DATABASE] == "DEV_RAW"
    assert out[outputs.SNOWFLAKE_RAW_SCHEMA] == "POSTGRES_AIRBYTE"
    assert out[outputs.SNOWFLAKE_LOADING_WAREHOUSE] == "DEV_LOADING_WH"
    assert out[outputs.SNOWFLAKE_AIRBYTE_ROLE] == "DEV_AIRBYTE_ROLE"
    assert out[outputs.SNOWFLAKE_AIRBYTE_USER] == "DEV_AIRBYTE_SVC"
    assert out[outputs.SNOWFLAKE_DASHBOARD_USER] == "DEV_DASHBOARD_SVC"
    for key in (
        outputs.SNOWFLAKE_AIRBYTE_KEY_SECRET_ARN,
        outputs.SNOWFLAKE_DBT_KEY_SECRET_ARN,
        outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN,
    ):
        assert str(out[key]).startswith("arn:aws:secretsmanager:")
        assert "/dev/snowflake/" in str(out[key])


@pytest.mark.parametrize(
    ("section", "key", "fix"),
    [
        (
            {"organizationName": None},
            "mdp:snowflake.organizationName",
            "pulumi config set --path 'snowflake.organizationName' MYORG --stack dev",
        ),
        (
            {"namePrefix": ""},
            "mdp:snowflake.namePrefix",
            "pulumi config set --path 'snowflake.namePrefix' DEV_ --stack dev",
        ),
        ({"namePrefix": "dev-"}, "mdp:snowflake.namePrefix", "'snowflake.namePrefix'"),
        (
            {"accountName": "myorg-mdp.snowflakecomputing.com"},
            "mdp:snowflake.accountName",
            "pulumi config set --path 'snowflake.accountName' MDP --stack dev",
        ),
        ({"creditQuota": 0}, "mdp:snowflake.creditQuota", "'snowflake.creditQuota' 20"),
        (
            {"airbyteAllowedCidrs": ["0.0.0.0/0"]},
            "mdp:snowflake.airbyteAllowedCidrs[0]",
            "'snowflake.airbyteAllowedCidrs[0]'",
        ),
        ({"warehouseSize": "X4LARGE"}, "mdp:snowflake.warehouseSize", "XSMALL"),
        ({"statementTimeoutSeconds": 172800}, "mdp:snowflake.statementTimeoutSeconds", "3600"),
        ({"rsaBits": 1024}, "mdp:snowflake.rsaBits", "4096"),
        ({"acountName": "X"}, "mdp:snowflake.acountName", "did you mean 'accountName'"),
    ],
    ids=lambda v: str(v),
)
def test_bad_config_fails_before_any_resource(section: dict, key: str, fix: str) -> None:
    drop = [k for k, v in section.items() if v is None]
    overrides = {k: v for k, v in section.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        run_snowflake("dev", drop=drop, **overrides)
    message = str(err.value)
    assert key in message and fix in message, message
    assert "no resource was declared" in message


def _settings(**extra: object) -> SnowflakeConfig:
    return SnowflakeConfig.model_validate(
        {
            "organizationName": "O",
            "accountName": "A",
            "creditQuota": 5,
            "namePrefix": "T_",
            "dbtAllowedCidrs": ["198.51.100.7/32"],
            **extra,
        }
    )


def test_dbt_user_signs_in_from_the_airflow_egress_ip() -> None:
    args = SnowflakePlatformArgs(
        settings=_settings(),
        stack="dev",
        protect=False,
        airbyte_cidrs=["13.37.4.46/32"],
        airflow_egress_ip=pulumi.Output.from_input("198.51.100.20"),
    )
    recorded = run_component(lambda: {"platform": SnowflakePlatform("t", args).dbt_user})
    ingress = {
        r.inputs["name"]: r.inputs["valueLists"] for r in recorded if r.type == rules.NETWORK_RULE
    }
    assert ingress == {
        "AIRBYTE_SVC_INGRESS": ["13.37.4.46/32"],
        "DBT_SVC_INGRESS": ["198.51.100.20/32", "198.51.100.7/32"],
        "DASHBOARD_SVC_INGRESS": ["198.51.100.20/32"],
    }


def test_a_service_user_without_a_network_is_refused() -> None:
    # Config validation already demands the networks; the component guards on its own too.
    no_dbt = _settings().model_copy(update={"dbt_allowed_cidrs": ()})
    args = SnowflakePlatformArgs(
        settings=no_dbt, stack="dev", protect=False, airbyte_cidrs=["13.37.4.46/32"]
    )
    with pytest.raises(ValueError, match="dbt service user would have no network") as err:
        run_component(lambda: {"user": SnowflakePlatform("t", args).dbt_user})
    assert "dbtAllowedCidrs" in str(err.value) and "No Snowflake object was declared" in str(
        err.value
    )
    args = SnowflakePlatformArgs(settings=_settings(), stack="dev", protect=False, airbyte_cidrs=[])
    with pytest.raises(ValueError, match="Airbyte service user would have no network"):
        run_component(lambda: {"user": SnowflakePlatform("t", args).dbt_user})


def test_component_attributes_for_airbyte() -> None:
    found: dict[str, Resolved] = {}
    names = (
        "airbyte_user", "airbyte_private_key", "airbyte_role", "loading_warehouse",
        "raw_database", "raw_schema", "dbt_private_key", "dbt_user", "dbt_airflow_connection",
    )  # fmt: skip

    def build() -> dict[str, object]:
        platform = SnowflakePlatform(
            "t",
            SnowflakePlatformArgs(
                settings=_settings(dbtAllowedCidrs=["198.51.100.7/32"]),
                stack="dev",
                protect=False,
                airbyte_cidrs=["13.37.4.46/32"],
            ),
        )
        return {name: getattr(platform, name) for name in names}

    run_component(build, found)
    assert found["airbyte_user"].value == "T_AIRBYTE_SVC"
    assert found["airbyte_role"].value == "T_AIRBYTE_ROLE"
    assert found["loading_warehouse"].value == "T_LOADING_WH"
    assert found["raw_database"].value == "T_RAW"
    assert found["raw_schema"].value == "POSTGRES_AIRBYTE"
    for key in ("airbyte_private_key", "dbt_private_key"):
        assert found[key].is_secret and "MOCKSECRET-pkcs8" in str(found[key].value)
    assert found["dbt_airflow_connection"].is_secret
    assert not found["airbyte_user"].is_secret


def test_prod_dbt_user_signs_in_from_the_nat_gateway(sf_prod: SnowflakeRun) -> None:
    nat_ip = sf_prod.run.named("network-nat-eip").outputs["publicIp"]
    dbt_rule = next(
        r for r in sf_prod.of_type(rules.NETWORK_RULE) if r.props["name"] == "DBT_SVC_INGRESS"
    )
    assert f"{nat_ip}/32" in dbt_rule.props["valueLists"]
