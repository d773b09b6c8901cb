"""Snowflake object names and the access matrix, as plain data shared by the component and its docs."""

from __future__ import annotations

from dataclasses import dataclass

from core import catalog

RAW = "RAW"
ANALYTICS = "ANALYTICS"
DBT_DEV = "DBT_DEV"
ADMIN = "ADMIN"

RAW_SCHEMA = catalog.RAW_SCHEMA
MODEL_SCHEMAS = ("STAGING", "INTERMEDIATE", "FINANCE")
NETWORK_SCHEMA = "NETWORK"

SCHEMAS: dict[str, tuple[str, ...]] = {
    RAW: (RAW_SCHEMA,),
    ANALYTICS: MODEL_SCHEMAS,
    DBT_DEV: MODEL_SCHEMAS,
    ADMIN: (NETWORK_SCHEMA,),
}

# Schema-level privileges of each access (database) role, by schema: what the objects each
# schema holds need (infra/snowflake/needs.py says which statement needs which). Ownership of
# tables and views comes from creating them, so no access role ever carries OWNERSHIP.
READ_OBJECT_TYPES: dict[str, tuple[str, ...]] = {
    RAW_SCHEMA: ("TABLES",),
    "STAGING": ("VIEWS",),
    "INTERMEDIATE": ("TABLES", "VIEWS"),
    "FINANCE": ("TABLES",),
}
WRITE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    RAW_SCHEMA: ("CREATE FILE FORMAT", "CREATE STAGE", "CREATE TABLE", "USAGE"),
    # Views, plus the temporary tables of dbt's unit tests.
    "STAGING": ("CREATE TABLE", "CREATE VIEW", "USAGE"),
    "INTERMEDIATE": ("CREATE TABLE", "CREATE VIEW", "USAGE"),
    "FINANCE": ("CREATE TABLE", "USAGE"),
}

# Workload -> the functional role that runs on that warehouse.
WAREHOUSES = ("LOADING", "TRANSFORMING", "REPORTING")

DATA_ENGINEER = "DATA_ENGINEER"
AIRBYTE_ROLE = "AIRBYTE_ROLE"
REPORTER = "REPORTER"
FUNCTIONAL_ROLES = (DATA_ENGINEER, AIRBYTE_ROLE, REPORTER)

AIRBYTE_USER = "AIRBYTE"
DBT_USER = "DBT"
# Signs the dashboard on the Airflow host in as REPORTER.
DASHBOARD_USER = "DASHBOARD"
SERVICE_USERS = (AIRBYTE_USER, DBT_USER, DASHBOARD_USER)


def read_role(schema: str) -> str:
    return f"{schema}_READ"


def write_role(schema: str) -> str:
    return f"{schema}_WRITE"


@dataclass(frozen=True)
class AccessGrant:
    """One database role granted to one functional role."""

    functional_role: str
    database: str
    database_role: str


# The grant matrix: which access roles make up each functional role.
ACCESS_MATRIX: tuple[AccessGrant, ...] = (
    AccessGrant(AIRBYTE_ROLE, RAW, write_role(RAW_SCHEMA)),
    AccessGrant(DATA_ENGINEER, RAW, read_role(RAW_SCHEMA)),
    *(
        AccessGrant(DATA_ENGINEER, db, role)
        for db in (ANALYTICS, DBT_DEV)
        for schema in MODEL_SCHEMAS
        for role in (read_role(schema), write_role(schema))
    ),
    AccessGrant(REPORTER, ANALYTICS, read_role("FINANCE")),
)

WAREHOUSE_USERS = {"LOADING": AIRBYTE_ROLE, "TRANSFORMING": DATA_ENGINEER, "REPORTING": REPORTER}


@dataclass(frozen=True)
class Naming:
    """Account-level names for one stack; the prefix keeps stacks apart in a shared account."""

    prefix: str = ""

    def database(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def role(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def warehouse(self, workload: str) -> str:
        return f"{self.prefix}{workload}_WH"

    def user(self, base: str) -> str:
        return f"{self.prefix}{base}_SVC"

    def resource_monitor(self) -> str:
        return f"{self.prefix}MDP_CREDIT_MONITOR"

    def network_policy(self, user_base: str) -> str:
        return f"{self.prefix}{user_base}_SVC_POLICY"


def quote(*parts: str) -> str:
    """A fully qualified identifier in the form the provider reads back, which avoids diffs."""
    return ".".join(f'"{p}"' for p in parts)
