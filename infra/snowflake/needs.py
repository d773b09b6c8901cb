"""What each workload runs in Snowflake, the privilege each statement needs, and where that is written."""

from __future__ import annotations

from dataclasses import dataclass

from infra.snowflake import naming as n

# Where each line comes from. Connector and adapter paths are pinned by the versions noted.
_AIRBYTE_KT = (
    "https://github.com/airbytehq/airbyte/blob/master/airbyte-integrations/connectors/"
    "destination-snowflake/src/main/kotlin/io/airbyte/integrations/destination/snowflake"
)
_DBT_SF = "dbt-snowflake 1.12: dbt/include/snowflake/macros"
_DBT_GLOBAL = "dbt-adapters 1.24: dbt/include/global_project/macros"
SOURCES: dict[str, str] = {
    "airbyte-setup": "https://docs.airbyte.com/integrations/destinations/snowflake",
    "airbyte-sql": f"{_AIRBYTE_KT}/sql/SnowflakeDirectLoadSqlGenerator.kt",
    "airbyte-client": f"{_AIRBYTE_KT}/client/SnowflakeAirbyteClient.kt",
    "airbyte-spec": "airbyte-api SDK: models/destination_snowflake.py (raw_data_schema)",
    "dbt-list-schemas": f"{_DBT_SF}/adapters.sql (snowflake__list_schemas: show terse schemas)",
    "dbt-list-objects": f"{_DBT_SF}/metadata/list_relations_without_caching.sql (show objects)",
    "dbt-view": f"{_DBT_SF}/materializations/view.sql",
    "dbt-table": f"{_DBT_SF}/materializations/table.sql",
    "dbt-incremental": f"{_DBT_SF}/materializations/incremental.sql (tmp_relation_type)",
    "dbt-transient-tmp": (
        f"{_DBT_SF}/relations/table/create.sql (snowflake__create_table_transient_sql)"
    ),
    "dbt-drop-table": f"{_DBT_SF}/relations/table/drop.sql (snowflake__drop_table)",
    "dbt-alter-type": f"{_DBT_SF}/adapters.sql (snowflake__alter_column_type)",
    "dbt-delete-insert": f"{_DBT_GLOBAL}/materializations/models/incremental/merge.sql",
    "dbt-add-columns": (f"{_DBT_SF}/adapters.sql (snowflake__alter_relation_add_remove_columns)"),
    "dbt-unit-test": (
        f"{_DBT_GLOBAL}/materializations/tests/unit.sql (create temporary table); "
        "https://docs.snowflake.com/en/user-guide/security-access-control-privileges"
        "#schema-privileges (CREATE TABLE is not required to create temporary tables)"
    ),
    "dbt-freshness": f"{_DBT_GLOBAL}/adapters/freshness.sql (collect_freshness)",
    "dbt-project": "transform/dbt_project.yml, transform/models/**",
    "dashboard": "core/warehouse.py (read-only queries of the FINANCE marts)",
    "sf-privileges": "https://docs.snowflake.com/en/user-guide/security-access-control-privileges",
    "sf-swap": "https://docs.snowflake.com/en/sql-reference/sql/alter-table (SWAP WITH)",
    "sf-warehouse": "https://docs.snowflake.com/en/user-guide/warehouses-tasks",
    "sf-network-rule": "https://docs.snowflake.com/en/sql-reference/sql/create-network-rule",
    "sf-monitor": "https://docs.snowflake.com/en/user-guide/resource-monitors",
    "sf-future": (
        "https://docs.snowflake.com/en/sql-reference/sql/grant-privilege "
        "(future grants: schema level takes precedence over database level)"
    ),
}

AIRBYTE, DBT, DASHBOARD, DEPLOY = "airbyte", "dbt", "dashboard", "pulumi"


@dataclass(frozen=True)
class Workload:
    """Something that signs in to Snowflake, and the role it runs as."""

    name: str
    role: str
    does: str


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(AIRBYTE, n.AIRBYTE_ROLE, "Airbyte Cloud's Snowflake destination loads RAW"),
        Workload(DBT, n.DATA_ENGINEER, "dbt builds the models in ANALYTICS and DBT_DEV"),
        Workload(DASHBOARD, n.REPORTER, "the dashboard reads the FINANCE marts"),
        # The deploying program itself, for the two grants it makes to system roles.
        Workload(DEPLOY, "SECURITYADMIN", "`pulumi up` creates the service users' network rules"),
        Workload(f"{DEPLOY}-sysadmin", "SYSADMIN", "`pulumi up` attaches the credit monitor"),
    )
}


@dataclass(frozen=True)
class Need:
    """One privilege one statement of one workload needs.

    `on` is the object kind. For objects inside a schema (TABLE, VIEW, STAGE, FILE FORMAT),
    `owner` is the workload whose role creates them: the creator owns what it creates, and
    any other role needs a future grant in place when the object is created.
    """

    workload: str
    statement: str
    privilege: str
    on: str
    database: str = ""
    schema: str = ""
    # A warehouse's workload name (LOADING) or the object's name outside any schema.
    name: str = ""
    owner: str = ""
    source: str = ""
    # CREATE SCHEMA IF NOT EXISTS: nothing is needed when the program declares the schema.
    unless_declared: bool = False

    @property
    def target(self) -> str:
        """The object, in the words of a GRANT statement (base names, no stack prefix)."""
        if self.on == "WAREHOUSE":
            return f"WAREHOUSE {self.name}_WH"
        if self.on == "RESOURCE MONITOR":
            return f"RESOURCE MONITOR {self.name}"
        if self.on == "DATABASE":
            return f"DATABASE {self.database}"
        if self.on == "SCHEMA":
            return f"SCHEMA {self.database}.{self.schema}"
        return f"{self.on} IN SCHEMA {self.database}.{self.schema}"


def _usage(workload: str, statement: str, database: str, schema: str, source: str) -> list[Need]:
    return [
        Need(workload, statement, "USAGE", "DATABASE", database, source=source),
        Need(workload, statement, "USAGE", "SCHEMA", database, schema, source=source),
    ]


def _warehouse(workload: str, warehouse: str) -> Need:
    return Need(
        workload,
        f"USE WAREHOUSE {warehouse}_WH (the user's default warehouse)",
        "USAGE",
        "WAREHOUSE",
        name=warehouse,
        source="sf-warehouse",
    )


def airbyte_needs(internal_schema: str = n.RAW_SCHEMA) -> list[Need]:
    """Airbyte's destination (direct-load connector): its schema, and its internal schema.

    `internal_schema` is the destination's `raw_data_schema`; the program sets it to the
    schema itself. Unset, Airbyte uses "airbyte_internal", which does not exist.
    """
    db, out = n.RAW, []
    for schema in dict.fromkeys((n.RAW_SCHEMA, internal_schema)):
        q = f'"{db}"."{schema}"'
        out += [
            Need(AIRBYTE, f"CREATE SCHEMA IF NOT EXISTS {q} (when absent)", "CREATE SCHEMA",
                 "DATABASE", db, schema, source="airbyte-client", unless_declared=True),
            *_usage(AIRBYTE, f"information_schema look-up of {q}; every statement in it", db,
                    schema, "airbyte-client"),
            Need(AIRBYTE, f'CREATE OR REPLACE FILE FORMAT {q}."airbyte_csv_format"',
                 "CREATE FILE FORMAT", "SCHEMA", db, schema, source="airbyte-sql"),
            Need(AIRBYTE, f"CREATE [OR REPLACE] TABLE {q}.<stream or temp table>",
                 "CREATE TABLE", "SCHEMA", db, schema, source="airbyte-sql"),
            Need(AIRBYTE, f'CREATE OR REPLACE STAGE {q}."airbyte_stage_<table>"',
                 "CREATE STAGE", "SCHEMA", db, schema, source="airbyte-sql"),
            Need(AIRBYTE, f'PUT file://... @{q}."airbyte_stage_<table>"; DROP STAGE',
                 "OWNERSHIP", "STAGE", db, schema, owner=AIRBYTE, source="airbyte-sql"),
            Need(AIRBYTE, f"COPY INTO, MERGE INTO, INSERT INTO, UPDATE {q}.<table>",
                 "OWNERSHIP", "TABLE", db, schema, owner=AIRBYTE, source="airbyte-sql"),
            Need(AIRBYTE, f"ALTER TABLE {q}.<table> ADD/DROP/RENAME COLUMN; RENAME TO",
                 "OWNERSHIP", "TABLE", db, schema, owner=AIRBYTE, source="airbyte-sql"),
            Need(AIRBYTE, f"ALTER TABLE {q}.<temp table> SWAP WITH <table>; DROP TABLE",
                 "OWNERSHIP", "TABLE", db, schema, owner=AIRBYTE, source="sf-swap"),
        ]  # fmt: skip
    out.append(_warehouse(AIRBYTE, "LOADING"))
    return out


# transform/models/staging/postgres_airbyte/base/: an incremental table among STAGING's views.
_CHARGES = "base_postgres_airbyte__payment_charges"


def dbt_needs(internal_schema: str = n.RAW_SCHEMA) -> list[Need]:
    """dbt in both targets: prod builds ANALYTICS, development builds DBT_DEV."""
    raw = f'{n.RAW}."{n.RAW_SCHEMA}"'
    out = _usage(DBT, f"select from the sources in {raw}", n.RAW, n.RAW_SCHEMA, "dbt-project")
    for schema in dict.fromkeys((n.RAW_SCHEMA, internal_schema)):
        # A refresh swaps in a table created in the internal schema, under that schema's
        # future grants: it keeps them (SWAP keeps grants), so they must be there too.
        made = "created there" if schema == n.RAW_SCHEMA else f"swapped in from {schema}"
        out.append(
            Need(DBT, f"dbt source freshness; select from {raw}.<table> ({made})",
                 "SELECT", "TABLE", n.RAW, schema, owner=AIRBYTE, source="dbt-freshness")
        )  # fmt: skip
    for db in (n.ANALYTICS, n.DBT_DEV):
        out.append(
            Need(DBT, f"show terse schemas in database {db} (schemas exist: never created)",
                 "USAGE", "DATABASE", db, source="dbt-list-schemas")
        )  # fmt: skip
        for schema in n.MODEL_SCHEMAS:
            out += _usage(DBT, f"show objects in {db}.{schema}", db, schema, "dbt-list-objects")
        out += [
            Need(DBT, f"create or replace view {db}.STAGING.<stg model>", "CREATE VIEW",
                 "SCHEMA", db, "STAGING", source="dbt-view"),
            Need(DBT, f"create or replace view {db}.INTERMEDIATE.dim_date", "CREATE VIEW",
                 "SCHEMA", db, "INTERMEDIATE", source="dbt-view"),
            # A temporary table lives only in its session: creating one needs USAGE on the
            # schema, not CREATE TABLE (Snowflake's schema privileges).
            Need(DBT, f"create or replace temporary table {db}.STAGING.<model>__dbt_tmp "
                 "(unit tests)", "USAGE", "SCHEMA", db, "STAGING", source="dbt-unit-test"),
            Need(DBT, f"create or replace temporary table {db}.INTERMEDIATE.<model>__dbt_tmp "
                 "(unit tests)", "USAGE", "SCHEMA", db, "INTERMEDIATE", source="dbt-unit-test"),
            # The one incremental model in STAGING (append after a pre-hook, tmp_relation_type
            # transient, on_schema_change sync_all_columns).
            Need(DBT, f"create or replace transient table {db}.STAGING.{_CHARGES} "
                 "(first run, --full-refresh)", "CREATE TABLE", "SCHEMA", db, "STAGING",
                 source="dbt-incremental"),
            Need(DBT, f"create or replace transient table {db}.STAGING.{_CHARGES}__dbt_tmp",
                 "CREATE TABLE", "SCHEMA", db, "STAGING", source="dbt-transient-tmp"),
            # Its pre-hook looks the window's charges up into a temporary table of the session.
            Need(DBT, f"create or replace temporary table {_CHARGES}__window (pre-hook)",
                 "USAGE", "SCHEMA", db, "STAGING", source="dbt-project"),
            Need(DBT, f"delete from {db}.STAGING.{_CHARGES} where charge_key in (...) "
                 "(pre-hook, rare); insert into", "OWNERSHIP", "TABLE", db, "STAGING", owner=DBT,
                 source="dbt-project"),
            Need(DBT, f"alter table {db}.STAGING.{_CHARGES} add/drop column (sync_all_columns)",
                 "OWNERSHIP", "TABLE", db, "STAGING", owner=DBT, source="dbt-add-columns"),
            Need(DBT, f"alter table {db}.STAGING.{_CHARGES} alter <column> set data type "
                 "(expand_target_column_types)", "OWNERSHIP", "TABLE", db, "STAGING",
                 owner=DBT, source="dbt-alter-type"),
            Need(DBT, f"drop table if exists {db}.STAGING.{_CHARGES}__dbt_tmp cascade",
                 "OWNERSHIP", "TABLE", db, "STAGING", owner=DBT, source="dbt-drop-table"),
            Need(DBT, f"create or replace transient table {db}.INTERMEDIATE.<model>",
                 "CREATE TABLE", "SCHEMA", db, "INTERMEDIATE", source="dbt-table"),
            Need(DBT, f"create or replace transient table {db}.FINANCE.<mart>",
                 "CREATE TABLE", "SCHEMA", db, "FINANCE", source="dbt-table"),
            Need(DBT, f"create or replace transient table {db}.FINANCE.<mart>__dbt_tmp",
                 "CREATE TABLE", "SCHEMA", db, "FINANCE", source="dbt-incremental"),
            Need(DBT, f"delete from {db}.INTERMEDIATE.<model> using <model>__dbt_tmp; "
                 "insert into", "OWNERSHIP", "TABLE", db, "INTERMEDIATE", owner=DBT,
                 source="dbt-delete-insert"),
            Need(DBT, f"alter table {db}.INTERMEDIATE.<model> add column (append_new_columns)",
                 "OWNERSHIP", "TABLE", db, "INTERMEDIATE", owner=DBT, source="dbt-add-columns"),
            Need(DBT, f"insert into {db}.FINANCE.<mart> select from <mart>__dbt_tmp",
                 "OWNERSHIP", "TABLE", db, "FINANCE", owner=DBT, source="dbt-incremental"),
            Need(DBT, f"select from {db}.STAGING.<view> (ref)", "OWNERSHIP", "VIEW", db,
                 "STAGING", owner=DBT, source="dbt-project"),
            Need(DBT, f"select from {db}.INTERMEDIATE.<model> (ref)", "OWNERSHIP", "TABLE", db,
                 "INTERMEDIATE", owner=DBT, source="dbt-project"),
        ]  # fmt: skip
    out.append(_warehouse(DBT, "TRANSFORMING"))
    return out


def dashboard_needs() -> list[Need]:
    """The dashboard: read-only selects of the FINANCE marts, which dbt builds as tables."""
    db, schema = n.ANALYTICS, "FINANCE"
    return [
        *_usage(DASHBOARD, f"select from {db}.{schema}.<mart>", db, schema, "dashboard"),
        Need(DASHBOARD, f"select from {db}.{schema}.<mart>", "SELECT", "TABLE", db, schema,
             owner=DBT, source="dashboard"),
        _warehouse(DASHBOARD, "REPORTING"),
    ]  # fmt: skip


def deploy_needs() -> list[Need]:
    """The program's own use of system roles: network rules, and the warehouses' monitor."""
    db, schema = n.ADMIN, n.NETWORK_SCHEMA
    return [
        *_usage(DEPLOY, f"CREATE NETWORK RULE {db}.{schema}.<user>_SVC_INGRESS", db, schema,
                "sf-network-rule"),
        Need(DEPLOY, f"CREATE NETWORK RULE {db}.{schema}.<user>_SVC_INGRESS",
             "CREATE NETWORK RULE", "SCHEMA", db, schema, source="sf-network-rule"),
        Need(f"{DEPLOY}-sysadmin", "ALTER WAREHOUSE <wh> SET RESOURCE_MONITOR = <monitor>",
             "MODIFY", "RESOURCE MONITOR", name="MDP_CREDIT_MONITOR", source="sf-monitor"),
    ]  # fmt: skip


def needs(internal_schema: str = n.RAW_SCHEMA) -> list[Need]:
    """Every workload's needs; `internal_schema` is the Airbyte destination's raw_data_schema."""
    return [
        *airbyte_needs(internal_schema),
        *dbt_needs(internal_schema),
        *dashboard_needs(),
        *deploy_needs(),
    ]


@dataclass(frozen=True)
class Deliberate:
    """Declared privileges no statement above needs, kept on purpose."""

    privilege: str
    # fnmatch patterns over the grant's target and its holder, in base names.
    targets: tuple[str, ...]
    holder: str
    reason: str


DELIBERATE: tuple[Deliberate, ...] = (
    Deliberate(
        "SELECT",
        ("ALL * IN SCHEMA *",),
        "*_READ",
        "Future grants reach only objects created after them; this covers the objects that "
        "already exist when a read role is (re)created over kept data, e.g. prod RAW.",
    ),
    Deliberate(
        "SELECT",
        (f"FUTURE * IN SCHEMA {n.ANALYTICS}.*", f"FUTURE * IN SCHEMA {n.DBT_DEV}.*"),
        "*_READ",
        "dbt owns its models, so it reads them without this; the read roles of ANALYTICS "
        "and DBT_DEV keep a model readable when another role re-creates it, such as an "
        "administrator restoring a table with CLONE ... AT during an incident.",
    ),
    Deliberate(
        "MONITOR",
        ("RESOURCE MONITOR *",),
        "SYSADMIN",
        "Lets the warehouses' owner see the credit quota they run under (SHOW RESOURCE "
        "MONITORS) when a warehouse is suspended.",
    ),
)
