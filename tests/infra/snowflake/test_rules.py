"""Each Snowflake policy rule passes on what the program declares and catches a bad resource."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from infra.mockrun import REPO_ROOT
from infra.policies.rules import (
    Context,
    Resource,
    Rule,
    all_rules,
    evaluate,
    from_policy_pack,
)
from infra.policies.rules import snowflake as rules
from tests.infra.snowflake.conftest import SnowflakeRun

PEM = (
    "-----"
    + "BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
)


def _mutated(resource: Resource, **props: Any) -> Resource:
    new = copy.deepcopy(dict(resource.props))
    for key, value in props.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return replace(resource, props=new)


def _first(run: SnowflakeRun, type_: str, where: Callable[[Resource], bool] = lambda r: True):
    found = [r for r in run.of_type(type_) if where(r)]
    assert found, f"the program declares no matching {type_}"
    return found[0]


def _multi_privilege(r: Resource) -> bool:
    return len(r.props.get("privileges") or []) > 1


# (rule, resource type, which resource, bad property values): one negative case per line.
RESOURCE_CASES: list[tuple[Rule, str, Any, dict[str, Any]]] = [
    (rules.service_users_use_key_pairs, rules.SERVICE_USER, None, {"rsaPublicKey": None}),
    (rules.service_users_use_key_pairs, rules.SERVICE_USER, None, {"password": "hunter2"}),
    (rules.service_users_have_network_policy, rules.SERVICE_USER, None, {"networkPolicy": None}),
    (
        rules.service_users_have_narrow_defaults,
        rules.SERVICE_USER,
        None,
        {"defaultRole": "ACCOUNTADMIN"},
    ),
    (
        rules.service_users_have_narrow_defaults,
        rules.SERVICE_USER,
        None,
        {"defaultSecondaryRolesOption": "ALL"},
    ),
    (rules.no_admin_role_grants, rules.GRANT_ACCOUNT_ROLE, None, {"roleName": "ACCOUNTADMIN"}),
    (rules.no_admin_role_grants, rules.GRANT_ACCOUNT_ROLE, None, {"roleName": '"SECURITYADMIN"'}),
    (rules.no_admin_role_grants, rules.GRANT_TO_ACCOUNT_ROLE, None, {"onAccount": True}),
    (
        rules.grants_are_explicit,
        rules.GRANT_TO_DATABASE_ROLE,
        None,
        {"privileges": None, "allPrivileges": True},
    ),
    (rules.grants_are_explicit, rules.GRANT_TO_ACCOUNT_ROLE, None, {"privileges": ["OWNERSHIP"]}),
    (rules.grants_are_explicit, rules.GRANT_TO_DATABASE_ROLE, None, {"withGrantOption": True}),
    (rules.grants_are_explicit, rules.GRANT_TO_DATABASE_ROLE, None, {"alwaysApply": True}),
    (
        rules.grants_are_explicit,
        rules.GRANT_TO_DATABASE_ROLE,
        _multi_privilege,
        {"privileges": ["USAGE", "CREATE TABLE"]},
    ),
    (rules.grants_are_explicit, rules.GRANT_TO_DATABASE_ROLE, None, {"privileges": ["select"]}),
    (rules.warehouse_suspends_when_idle, rules.WAREHOUSE, None, {"autoSuspend": 600}),
    (rules.warehouse_suspends_when_idle, rules.WAREHOUSE, None, {"autoSuspend": 0}),
    (rules.warehouse_suspends_when_idle, rules.WAREHOUSE, None, {"autoResume": "false"}),
    (rules.warehouse_suspends_when_idle, rules.WAREHOUSE, None, {"initiallySuspended": False}),
    (rules.warehouse_has_resource_monitor, rules.WAREHOUSE, None, {"resourceMonitor": None}),
    (rules.warehouse_statement_timeout, rules.WAREHOUSE, None, {"statementTimeoutInSeconds": None}),
    (
        rules.warehouse_statement_timeout,
        rules.WAREHOUSE,
        None,
        {"statementTimeoutInSeconds": 172800},
    ),
    (rules.warehouse_size_capped, rules.WAREHOUSE, None, {"warehouseSize": "X4LARGE"}),
    (rules.resource_monitor_thresholds, rules.RESOURCE_MONITOR, None, {"creditQuota": 0}),
    (rules.resource_monitor_thresholds, rules.RESOURCE_MONITOR, None, {"notifyTriggers": [50]}),
    (rules.resource_monitor_thresholds, rules.RESOURCE_MONITOR, None, {"suspendTrigger": None}),
    (rules.network_rules_are_narrow, rules.NETWORK_RULE, None, {"valueLists": ["0.0.0.0/0"]}),
    (rules.network_rules_are_narrow, rules.NETWORK_RULE, None, {"valueLists": []}),
    (rules.network_rules_are_narrow, rules.NETWORK_RULE, None, {"mode": "EGRESS"}),
    (
        rules.network_policies_use_rules,
        rules.NETWORK_POLICY,
        None,
        {"allowedNetworkRuleLists": None},
    ),
    (
        rules.network_policies_use_rules,
        rules.NETWORK_POLICY,
        None,
        {"allowedIpLists": ["0.0.0.0/0"]},
    ),
    (rules.rsa_keys_are_strong, rules.TLS_PRIVATE_KEY, None, {"rsaBits": 1024}),
    (rules.rsa_keys_are_strong, rules.TLS_PRIVATE_KEY, None, {"algorithm": "ECDSA"}),
    (rules.no_plaintext_private_keys, rules.SERVICE_USER, None, {"comment": PEM}),
    (rules.no_plaintext_private_keys, rules.NETWORK_POLICY, None, {"comment": PEM}),
    (rules.provider_uses_key_pair, rules.PROVIDER, None, {"authenticator": "SNOWFLAKE"}),
    (rules.provider_uses_key_pair, rules.PROVIDER, None, {"password": "hunter2"}),
]


def _case_id(case: tuple[Any, ...]) -> str:
    rule, type_, _, bad = case
    return f"{rule.name}-{type_.rsplit(':', 1)[-1]}-{'-'.join(bad)}"


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=[_case_id(c) for c in RESOURCE_CASES])
def test_resource_rule_catches_bad_resource(
    case: tuple[Any, ...], sf_dev: SnowflakeRun, sf_prod: SnowflakeRun
) -> None:
    rule, type_, where, bad = case
    for run in (sf_dev, sf_prod):
        context = Context(production=run is sf_prod)
        good = _first(run, type_, where or (lambda r: True))
        assert rule.on_stack([good], context) == [], f"{rule.name} rejects {good.name}"
        found = rule.on_stack([_mutated(good, **bad)], context)
        assert found, f"{rule.name} misses {bad} on {good.name}"
        assert all((v.rule, v.resource) == (rule.name, good.name) for v in found), found


@pytest.mark.parametrize(
    "type_", [rules.USER, rules.LEGACY_SERVICE_USER], ids=["User", "LegacyServiceUser"]
)
def test_person_and_legacy_users_are_rejected(type_: str, sf_dev: SnowflakeRun) -> None:
    service_user = _first(sf_dev, rules.SERVICE_USER)
    assert rules.service_users_use_key_pairs(type_, service_user.props)


def test_ownership_transfer_is_rejected(sf_dev: SnowflakeRun) -> None:
    assert not [r for r in sf_dev.resources if rules.no_ownership_transfers(r.type, r.props)]
    transfer = Resource(
        type=rules.GRANT_OWNERSHIP,
        name="bad-ownership",
        props={
            "accountRoleName": "DEV_AIRBYTE_ROLE",
            "on": {"objectType": "SCHEMA", "objectName": '"DEV_RAW"."POSTGRES_AIRBYTE"'},
        },
    )
    assert rules.no_ownership_transfers(transfer.type, transfer.props)


def test_prod_databases_must_be_protected(sf_dev: SnowflakeRun, sf_prod: SnowflakeRun) -> None:
    prod, rule = Context(production=True), rules.prod_databases_protected
    prod_db = _first(sf_prod, rules.DATABASE)
    assert prod_db.protect
    assert rule.on_stack(sf_prod.resources, prod) == []
    assert [v.resource for v in rule.on_stack([replace(prod_db, protect=False)], prod)] == [
        prod_db.name
    ]
    unprotected_schema = replace(_first(sf_prod, rules.SCHEMA), protect=False)
    assert rule.on_stack([unprotected_schema], prod)
    # Dev databases are meant to be torn down freely.
    assert not _first(sf_dev, rules.DATABASE).protect
    assert rule.on_stack(sf_dev.resources, Context(production=False)) == []


# --- stack rules ----------------------------------------------------------------------


def _messages(rule: Rule, resources: Sequence[Resource]) -> list[str]:
    return [v.message for v in rule.on_stack(resources)]


def _without(run: SnowflakeRun, predicate: Callable[[Resource], bool]) -> list[Resource]:
    kept = [r for r in run.resources if not predicate(r)]
    assert len(kept) < len(run.resources), "the predicate matched nothing"
    return kept


def test_matrix_catches_an_extra_grant(sf_dev: SnowflakeRun) -> None:
    reporter_wh = _first(
        sf_dev,
        rules.GRANT_TO_ACCOUNT_ROLE,
        lambda r: r.props.get("accountRoleName") == "DEV_REPORTER",
    )
    extra = _mutated(
        reporter_wh,
        privileges=["USAGE"],
        onAccountObject={"objectType": "WAREHOUSE", "objectName": "DEV_TRANSFORMING_WH"},
    )
    found = _messages(rules.grants_match_matrix, [*sf_dev.resources, replace(extra, name="extra")])
    assert found == [
        "DEV_REPORTER holds USAGE on WAREHOUSE DEV_TRANSFORMING_WH, beyond the grant matrix"
    ]


def test_matrix_catches_a_database_wide_future_grant(sf_dev: SnowflakeRun) -> None:
    def is_raw_future_tables(r: Resource) -> bool:
        future = (r.props.get("onSchemaObject") or {}).get("future") or {}
        return "POSTGRES_AIRBYTE_READ" in str(r.props.get("databaseRoleName")) and (
            future.get("objectTypePlural") == "TABLES"
        )

    good = _first(sf_dev, rules.GRANT_TO_DATABASE_ROLE, is_raw_future_tables)
    broader = _mutated(
        good,
        onSchemaObject={"future": {"objectTypePlural": "TABLES", "inDatabase": '"DEV_RAW"'}},
    )
    resources = [broader if r is good else r for r in sf_dev.resources]
    found = _messages(rules.grants_match_matrix, resources)
    assert (
        "DEV_DATA_ENGINEER holds SELECT on FUTURE TABLES IN DATABASE DEV_RAW, beyond the "
        "grant matrix" in found
    )
    # Losing the schema-level future grant is what breaks reads after Airbyte recreates a table.
    assert (
        "DEV_DATA_ENGINEER lacks SELECT on FUTURE TABLES IN SCHEMA DEV_RAW.POSTGRES_AIRBYTE "
        "from the grant matrix" in found
    )


def test_matrix_catches_a_missing_access_role(sf_dev: SnowflakeRun) -> None:
    resources = _without(
        sf_dev,
        lambda r: (
            r.type == rules.GRANT_DATABASE_ROLE and r.props.get("parentRoleName") == "DEV_REPORTER"
        ),
    )
    found = _messages(rules.grants_match_matrix, resources)
    assert found and all(v.startswith("DEV_REPORTER lacks") for v in found)


def test_matrix_catches_unlisted_roles_and_system_role_grants(sf_dev: SnowflakeRun) -> None:
    stray_role = Resource(rules.ACCOUNT_ROLE, "stray", {"name": "DEV_INTERN"})
    sysadmin_grant = Resource(
        rules.GRANT_TO_ACCOUNT_ROLE,
        "to-sysadmin",
        {
            "accountRoleName": "SYSADMIN",
            "privileges": ["USAGE"],
            "onAccountObject": {"objectType": "DATABASE", "objectName": "DEV_RAW"},
        },
    )
    found = _messages(rules.grants_match_matrix, [*sf_dev.resources, stray_role, sysadmin_grant])
    assert "role DEV_INTERN is not in the grant matrix" in found
    assert "system role SYSADMIN is granted USAGE on DATABASE DEV_RAW" in found


def test_every_role_must_reach_sysadmin(sf_dev: SnowflakeRun) -> None:
    assert _messages(rules.functional_roles_reach_sysadmin, sf_dev.resources) == []
    resources = _without(
        sf_dev,
        lambda r: (
            r.type == rules.GRANT_ACCOUNT_ROLE
            and r.props.get("roleName") == "DEV_AIRBYTE_ROLE"
            and r.props.get("parentRoleName") == "SYSADMIN"
        ),
    )
    assert _messages(rules.functional_roles_reach_sysadmin, resources) == [
        "role DEV_AIRBYTE_ROLE is not granted to SYSADMIN, so admins cannot manage what it owns"
    ]


def test_warehouses_must_use_a_declared_monitor(sf_dev: SnowflakeRun) -> None:
    assert _messages(rules.warehouses_use_declared_monitor, sf_dev.resources) == []
    resources = _without(sf_dev, lambda r: r.type == rules.RESOURCE_MONITOR)
    assert len(_messages(rules.warehouses_use_declared_monitor, resources)) == 3


def test_accountadmin_manages_only_the_monitor(sf_dev: SnowflakeRun) -> None:
    rule = rules.accountadmin_only_for_monitors
    assert rule.on_stack(sf_dev.resources) == []
    wh = _first(sf_dev, rules.WAREHOUSE)
    resources = [
        replace(wh, provider_role="ACCOUNTADMIN") if r is wh else r for r in sf_dev.resources
    ]
    assert [(v.resource, v.message) for v in rule.on_stack(resources)] == [
        (wh.name, f"{rules.WAREHOUSE} is managed as ACCOUNTADMIN")
    ]


def test_private_key_outputs_must_be_secret() -> None:
    assert rules.private_key_outputs_are_secret({"snowflakeHost": ("x.example", False)}) == []
    assert rules.private_key_outputs_are_secret({"airbytePrivateKey": ("k", True)}) == []
    assert rules.private_key_outputs_are_secret({"airbyte_private_key": ("k", False)})
    assert rules.private_key_outputs_are_secret({"creds": ({"k": PEM}, False)})


def test_rules_import_without_pulumi() -> None:
    # The policy pack has its own environment (pulumi-policy pins protobuf 5).
    code = (
        "import sys; sys.modules['pulumi'] = None; sys.modules['pulumi_policy'] = None; "
        "import infra.policies.rules as p; import infra.policies.rules.snowflake; "
        "print(sum(name.startswith('snowflake-') for name in p.REGISTRY.rules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(_module_rules())


def _module_rules() -> set[str]:
    return {v.name for v in vars(rules).values() if isinstance(v, Rule)}


def _as_pack_hands_it_over(r: Resource) -> Any:
    """A resource in the shape pulumi_policy gives a stack policy (PolicyResource)."""
    provider = SimpleNamespace(props={"role": r.provider_role}) if r.provider_role else None
    return SimpleNamespace(
        resource_type=r.type,
        name=r.name,
        props=r.props,
        opts=SimpleNamespace(protect=r.protect),
        provider=provider,
    )


def test_policy_pack_registry_runs_the_snowflake_rules(sf_stack: SnowflakeRun) -> None:
    names = {r.name for r in all_rules() if r.name.startswith("snowflake-")}
    assert names == _module_rules()
    assert {
        "snowflake-prod-databases-protected",
        "snowflake-accountadmin-only-for-monitors",
    } <= names
    assert all(r.sources for r in all_rules())
    pack = [from_policy_pack(_as_pack_hands_it_over(r)) for r in sf_stack.resources]
    assert pack == list(sf_stack.resources)
    context = Context(production=sf_stack.run.stack == "prod")
    assert [v for v in evaluate(pack, context) if v.rule in names] == []
    wh = next(r for r in pack if r.type == rules.WAREHOUSE)
    bad = replace(wh, props={**wh.props, "autoSuspend": 3600})
    found = [v for v in evaluate([bad if r is wh else r for r in pack], context) if v.rule in names]
    assert [(v.rule, v.resource) for v in found] == [
        ("snowflake-warehouse-suspends-when-idle", wh.name)
    ]
    assert found[0].message.endswith("auto_suspend is 3600, not 1-60 s")


def test_the_pack_sees_protect_and_the_provider_role(sf_prod: SnowflakeRun) -> None:
    # Both come from the resource's options, not its properties: the pack must pass them on.
    db = _first(sf_prod, rules.DATABASE)
    wh = _first(sf_prod, rules.WAREHOUSE)
    changed = {
        db.name: replace(db, protect=False),
        wh.name: replace(wh, provider_role="ACCOUNTADMIN"),
    }
    under_test = {"snowflake-prod-databases-protected", "snowflake-accountadmin-only-for-monitors"}

    def found(resources: Sequence[Resource]) -> set[tuple[str, str]]:
        pack = [from_policy_pack(_as_pack_hands_it_over(r)) for r in resources]
        violations = evaluate(pack, Context(production=True))
        return {(v.rule, v.resource) for v in violations if v.rule in under_test}

    assert found(sf_prod.resources) == set()
    assert found([changed.get(r.name, r) for r in sf_prod.resources]) == {
        ("snowflake-prod-databases-protected", db.name),
        ("snowflake-accountadmin-only-for-monitors", wh.name),
    }
