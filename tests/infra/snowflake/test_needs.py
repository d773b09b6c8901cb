"""Each workload's needs against the grants the program declares, for both stacks, by Snowflake's rules."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from pathlib import Path

import pytest

from infra.mockrun import REPO_ROOT
from infra.snowflake import naming as n
from infra.snowflake.access import SCHEMA_OBJECTS, Grant, Grants, declared_grants, evaluate
from infra.snowflake.docs import DOC_PATH, roles_markdown
from infra.snowflake.needs import (
    DASHBOARD,
    DBT,
    DELIBERATE,
    SOURCES,
    Deliberate,
    Need,
    needs,
)
from tests.infra.snowflake.conftest import SnowflakeRun, run_snowflake

DESTINATION = "pulumi-python:dynamic/airbyte:SnowflakeDestination"
STACKS = ("dev", "prod")
_RUNS: dict[str, SnowflakeRun] = {}


def program(stack: str) -> SnowflakeRun:
    """The whole program with Snowflake and Airbyte configured, so the destination is declared."""
    if stack not in _RUNS:
        _RUNS[stack] = run_snowflake(
            stack,
            overrides={
                "mdp:airbyte": {"workspaceId": "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"},
                "airbyte:clientId": "mock-client-id",
            },
            secrets={"airbyte:clientSecret": "MOCK-airbyte-client-secret"},
        )
    return _RUNS[stack]


def raw_data_schema(run: SnowflakeRun) -> str:
    """The internal schema the declared Airbyte destination sends."""
    (destination,) = run.of_type(DESTINATION)
    return str(destination.props["raw_data_schema"])


def grant_key(need: Need) -> tuple[str, str]:
    """The (privilege, target) a need takes from a grant, when ownership does not give it."""
    if need.on in SCHEMA_OBJECTS:
        where = f"{need.database}.{need.schema}"
        return need.privilege, f"FUTURE {SCHEMA_OBJECTS[need.on]} IN SCHEMA {where}"
    return need.privilege, need.target


def _needs_a_grant(need: Need) -> bool:
    declared_schema = need.schema in n.SCHEMAS.get(need.database, ())
    return not need.unless_declared or not declared_schema


# Every privilege some workload takes from a grant (not from owning the object).
NEEDED_GRANTS = sorted(
    {grant_key(need) for need in needs() if _needs_a_grant(need) and need.privilege != "OWNERSHIP"}
)


@pytest.mark.parametrize("stack", STACKS)
def test_the_destination_keeps_its_internal_tables_in_postgres_airbyte(stack: str) -> None:
    run = program(stack)
    (destination,) = run.of_type(DESTINATION)
    assert destination.props["schema"] == n.RAW_SCHEMA
    assert raw_data_schema(run) == n.RAW_SCHEMA == "POSTGRES_AIRBYTE"


@pytest.mark.parametrize("stack", STACKS)
def test_grants_meet_every_need_and_nothing_more(stack: str) -> None:
    run = program(stack)
    declared = declared_grants(run.resources)
    verdict = evaluate(needs(raw_data_schema(run)), declared)
    assert verdict.problems == [], f"{stack}:\n" + "\n".join(verdict.problems)
    # Not vacuous: each workload's grant-backed needs were met by declared grants.
    met = {need.workload for need in verdict.support}
    assert met >= {"airbyte", DBT, DASHBOARD, "pulumi", "pulumi-sysadmin"}
    assert len(declared.grants) > 50


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("privilege", "target"), NEEDED_GRANTS, ids=lambda v: str(v))
def test_removing_a_needed_grant_names_the_statement(
    stack: str, privilege: str, target: str
) -> None:
    run = program(stack)
    declared = declared_grants(run.resources)
    assert any((g.privilege, g.target) == (privilege, target) for g in declared.grants), (
        f"{stack} declares no {privilege} on {target}"
    )
    verdict = evaluate(needs(raw_data_schema(run)), declared.without(privilege, target))
    statements = [
        need.statement
        for need in needs()
        if _needs_a_grant(need) and grant_key(need) == (privilege, target)
    ]
    assert verdict.missing
    for message in verdict.missing:
        assert f"needs {privilege} on" in message and "Fix: " in message, message
    for statement in statements:
        assert any(f"`{statement}`" in m for m in verdict.missing), (statement, verdict.missing)
    # The fix names the grant that was removed.
    fixes = [m.split("Fix: ", 1)[1] for m in verdict.missing]
    assert all(f"GRANT {privilege} ON {target} TO " in f for f in fixes), fixes


def test_without_raw_data_schema_the_first_sync_needs_create_schema() -> None:
    declared = declared_grants(program("dev").resources)
    verdict = evaluate(needs("AIRBYTE_INTERNAL"), declared)
    text = "\n".join(verdict.missing)
    assert '`CREATE SCHEMA IF NOT EXISTS "RAW"."AIRBYTE_INTERNAL" (when absent)`' in text
    assert "needs CREATE SCHEMA on DATABASE RAW" in text
    # A refresh's swapped-in table keeps the internal schema's (absent) future grants.
    assert "swapped in from AIRBYTE_INTERNAL" in text
    assert "GRANT SELECT ON FUTURE TABLES IN SCHEMA RAW.AIRBYTE_INTERNAL" in text


def test_the_four_privileges_nothing_used_are_gone_or_have_a_reader() -> None:
    for stack in STACKS:
        grants = {(g.privilege, g.target) for g in declared_grants(program(stack).resources).grants}
        assert ("CREATE SCHEMA", "DATABASE DBT_DEV") not in grants
        assert not [t for p, t in grants if p == "CREATE VIEW" and t.endswith(".FINANCE")]
        assert not [t for p, t in grants if "VIEWS" in t and t.endswith(f"RAW.{n.RAW_SCHEMA}")]
        # CREATE TABLE on STAGING stays: its one incremental model is a table, with a
        # transient tmp table beside it on each incremental run.
        assert ("CREATE TABLE", "SCHEMA ANALYTICS.STAGING") in grants
    readers = [
        need
        for need in needs()
        if (need.privilege, need.target) == ("CREATE TABLE", "SCHEMA ANALYTICS.STAGING")
    ]
    assert [r.source for r in readers] == ["dbt-incremental", "dbt-transient-tmp"]
    assert all("base_postgres_airbyte__payment_charges" in r.statement for r in readers)
    # A unit test's temporary table needs no CREATE TABLE, only USAGE on the schema.
    unit_tests = [need for need in needs() if need.source == "dbt-unit-test"]
    assert unit_tests and {need.privilege for need in unit_tests} == {"USAGE"}


def test_every_table_model_in_staging_has_its_needs() -> None:
    """A model in STAGING materialized as a table or incremental needs CREATE TABLE there."""
    staging = Path(REPO_ROOT, "transform/models/staging")
    tables = sorted(
        path.stem
        for path in staging.rglob("*.sql")
        if re.search(r"materialized\s*=\s*['\"](table|incremental)['\"]", path.read_text())
    )
    assert tables, "no table model in STAGING: drop its CREATE TABLE needs"
    creates = [
        need.statement
        for need in needs()
        if (need.privilege, need.target) == ("CREATE TABLE", "SCHEMA ANALYTICS.STAGING")
    ]
    for model in tables:
        assert any(f"STAGING.{model} " in s for s in creates), (model, creates)


def test_every_mart_the_dashboard_reads_is_a_finance_table_the_reporter_selects() -> None:
    """The reporting role selects future tables in FINANCE only: a mart added later (DATA_AS_OF,
    the billing-period mart) is covered as long as dbt builds it there, as a table."""
    import yaml

    from core.warehouse import CONTRACT_MARTS
    from dashboard import metrics

    project = yaml.safe_load(Path(REPO_ROOT, "transform/dbt_project.yml").read_text())
    folder = project["models"]["mdp"]["marts"]
    assert (folder["+schema"], folder["+materialized"]) == ("finance", "table")
    models = {
        path.stem: path.read_text()
        for path in Path(REPO_ROOT, "transform/models/marts").rglob("*.sql")
    }
    assert {*CONTRACT_MARTS, *metrics.OPTIONAL_MARTS, metrics.AS_OF_MART} <= set(models)
    overridden = {
        name
        for name, sql in models.items()
        if re.search(r"\bschema\s*=|materialized\s*=\s*['\"](?!table|incremental)", sql)
    }
    assert overridden == set(), "the REPORTER role could not read these"
    selects = _dashboard_select()
    assert [(need.on, need.database, need.schema) for need in selects] == [
        ("TABLE", n.ANALYTICS, "FINANCE")
    ]
    for stack in STACKS:
        declared = declared_grants(program(stack).resources)
        assert evaluate(selects, declared, ()).missing == [], stack


# -- Snowflake's rules, each shown on the declared grants of the dev stack ------------------------
@pytest.fixture(scope="module")
def dev() -> Grants:
    return declared_grants(program("dev").resources)


def _dashboard_select() -> list[Need]:
    return [n_ for n_ in needs() if n_.workload == DASHBOARD and n_.privilege == "SELECT"]


def test_ownership_needs_no_grant_and_cannot_be_granted(dev: Grants) -> None:
    owned = Need(DBT, "merge into X", "OWNERSHIP", "TABLE", n.ANALYTICS, "FINANCE", owner=DBT)
    assert evaluate([owned], dev, DELIBERATE).missing == []
    someone_elses = dataclasses.replace(owned, workload=DASHBOARD)
    (message,) = evaluate([someone_elses], dev, DELIBERATE).missing
    assert "never grants OWNERSHIP" in message


def test_schema_level_future_grants_take_precedence(dev: Grants) -> None:
    schema_level = "FUTURE TABLES IN SCHEMA ANALYTICS.FINANCE"
    db_level = Grant(
        "ANALYTICS.FINANCE_READ", "SELECT", "FUTURE TABLES IN DATABASE ANALYTICS", "db"
    )
    moved = dev.without("SELECT", schema_level)
    moved.grants.append(db_level)
    # With no schema-level future grant for tables in FINANCE, the database-level one applies.
    assert evaluate(_dashboard_select(), moved, ()).missing == []
    # Any schema-level future grant for tables there (here to another role) shadows it.
    moved.grants.append(Grant("ANALYTICS.STAGING_READ", "SELECT", schema_level, "other"))
    (message,) = evaluate(_dashboard_select(), moved, ()).missing
    assert "select from ANALYTICS.FINANCE.<mart>" in message
    assert f"GRANT SELECT ON {schema_level} TO database role ANALYTICS.FINANCE_READ" in message


def test_managed_access_counts_only_the_schema_owners_grants(dev: Grants) -> None:
    assert dev.schemas["ANALYTICS.FINANCE"] == (True, "SYSADMIN")
    by_another = Grants(
        [
            dataclasses.replace(g, declared_as="DATA_ENGINEER")
            if g.target == "FUTURE TABLES IN SCHEMA ANALYTICS.FINANCE"
            else g
            for g in dev.grants
        ],
        dev.members,
        dev.schemas,
    )
    assert evaluate(_dashboard_select(), by_another, ()).missing
    unmanaged = dataclasses.replace(
        by_another, schemas={**dev.schemas, "ANALYTICS.FINANCE": (False, "SYSADMIN")}
    )
    assert evaluate(_dashboard_select(), unmanaged, ()).missing == []


def test_privileges_come_through_role_inheritance(dev: Grants) -> None:
    members = {role: set(held) for role, held in dev.members.items()}
    members["REPORTER"].discard("ANALYTICS.FINANCE_READ")
    cut = dataclasses.replace(dev, members=members)
    (message,) = evaluate(_dashboard_select(), cut, ()).missing
    assert "and grant ANALYTICS.FINANCE_READ to REPORTER" in message
    # Through a role in between, at any depth.
    members["REPORTER"].add("FINANCE_READERS")
    members["FINANCE_READERS"] = {"ANALYTICS.FINANCE_READ"}
    assert evaluate(_dashboard_select(), cut, ()).missing == []


def test_an_unneeded_grant_fails_unless_kept_on_purpose(dev: Grants) -> None:
    extra = Grant(
        "RAW.POSTGRES_AIRBYTE_READ", "SELECT", f"FUTURE VIEWS IN SCHEMA RAW.{n.RAW_SCHEMA}", "x"
    )
    grants = dataclasses.replace(dev, grants=[*dev.grants, extra])
    (message,) = evaluate(needs(), grants).unused
    assert message.startswith("x: SELECT on FUTURE VIEWS IN SCHEMA RAW.POSTGRES_AIRBYTE")
    assert "no workload needs it" in message
    kept = Deliberate("SELECT", ("FUTURE VIEWS IN SCHEMA RAW.*",), "*_READ", "a reason")
    assert evaluate(needs(), grants, (*DELIBERATE, kept)).unused == []


def test_every_need_and_exception_says_where_it_comes_from() -> None:
    for need in needs("AIRBYTE_INTERNAL"):
        assert need.source in SOURCES, need
    for kept in DELIBERATE:
        assert len(kept.reason) > 40 and all(fnmatch.translate(t) for t in kept.targets)


def test_the_roles_doc_is_generated_from_the_needs_table() -> None:
    committed = Path(REPO_ROOT, DOC_PATH).read_text(encoding="utf-8")
    assert committed == roles_markdown(), (
        f"{DOC_PATH} is stale: run `.venv/bin/python -m infra.snowflake.docs > {DOC_PATH}`"
    )
    for role in ("AIRBYTE_ROLE", "DATA_ENGINEER", "REPORTER", "SECURITYADMIN", "SYSADMIN"):
        assert f"\n## {role}\n" in committed
