"""The Snowflake side of mdp: databases, access and functional roles, warehouses, cost guard, service users."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from core.connections import SNOWFLAKE_CONN_ID
from infra.component import Component
from infra.endpoints import SnowflakeTarget
from infra.sections import StackName
from infra.snowflake import naming as n
from infra.snowflake.config import SnowflakeConfig
from infra.snowflake.rotation import key_generation
from infra.snowflake.service_user import ServiceUser, ServiceUserArgs

AUTO_SUSPEND_SECONDS = 60
# Queries waiting this long for a busy XSMALL warehouse are better retried by the caller.
STATEMENT_QUEUED_TIMEOUT_SECONDS = 900
NOTIFY_AT_PERCENT = (75, 90)
SUSPEND_AT_PERCENT = 100
# SUSPEND lets running statements finish; this bounds the overrun they can cause.
SUSPEND_IMMEDIATELY_AT_PERCENT = 110

SYSADMIN = "SYSADMIN"
SECURITYADMIN = "SECURITYADMIN"
ACCOUNTADMIN = "ACCOUNTADMIN"


@dataclass(frozen=True)
class SnowflakePlatformArgs:
    """Inputs of the Snowflake component; `settings` is the validated `mdp:snowflake` section."""

    settings: SnowflakeConfig
    stack: StackName
    protect: bool
    # Airbyte Cloud's egress IPs: the only networks the Airbyte user signs in from.
    airbyte_cidrs: Sequence[str]
    # The Airflow host's egress IP (an AWS output): the only network the dbt user signs in from,
    # and the only one of the dashboard user, which exists only when this is set.
    airflow_egress_ip: pulumi.Input[str] | None = None
    # PEM key of the deploying user; None lets the provider read SNOWFLAKE_PRIVATE_KEY.
    admin_private_key: pulumi.Input[str] | None = None
    secret_name_prefix: str = "mdp"
    secrets_kms_key_id: pulumi.Input[str] | None = None
    secret_recovery_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    out: pulumi.Output[str] = pulumi.Output.secret(value)
    return out


def _check_networks(args: SnowflakePlatformArgs) -> None:
    # Before any resource: an aborted program must not leave half a platform behind.
    if args.airflow_egress_ip is None and not args.settings.dbt_allowed_cidrs:
        raise ValueError(
            "The dbt service user would have no network to sign in from: wire the Airflow "
            "host's egress IP, or run `pulumi config set --path "
            "'mdp:snowflake.dbtAllowedCidrs[0]' <ip>/32`. No Snowflake object was declared."
        )
    if not args.airbyte_cidrs:
        raise ValueError(
            "The Airbyte service user would have no network to sign in from: run "
            "`pulumi config set --path 'mdp:snowflake.airbyteAllowedCidrs[0]' <ip>/32`. "
            "No Snowflake object was declared."
        )


def airflow_connection(
    account: str, user: str, database: str, warehouse: str, role: str, pem: str
) -> str:
    # The Snowflake provider (>= 6.3) and Cosmos read private_key_content base64-encoded.
    extra = {
        "account": account,
        "database": database,
        "warehouse": warehouse,
        "role": role,
        "private_key_content": base64.b64encode(pem.encode()).decode(),
    }
    return json.dumps(
        {"conn_type": "snowflake", "login": user, "schema": "STAGING", "extra": extra},
        sort_keys=True,
    )


class SnowflakePlatform(Component[SnowflakePlatformArgs]):
    """Every Snowflake object mdp needs, secure by default."""

    TYPE = "mdp:snowflake:SnowflakePlatform"

    account_identifier: str
    host: str
    account_locator: pulumi.Output[str]
    raw_database: pulumi.Output[str]
    raw_schema: pulumi.Output[str]
    analytics_database: pulumi.Output[str]
    dbt_dev_database: pulumi.Output[str]
    loading_warehouse: pulumi.Output[str]
    transforming_warehouse: pulumi.Output[str]
    reporting_warehouse: pulumi.Output[str]
    airbyte_role: pulumi.Output[str]
    data_engineer_role: pulumi.Output[str]
    reporter_role: pulumi.Output[str]
    airbyte_user: pulumi.Output[str]
    dbt_user: pulumi.Output[str]
    # The dashboard served on the Airflow host; None without `airflow_egress_ip`.
    dashboard_user: pulumi.Output[str] | None
    dashboard_key_secret_arn: pulumi.Output[str] | None
    airbyte_private_key: pulumi.Output[str]
    dbt_private_key: pulumi.Output[str]
    airbyte_key_secret_arn: pulumi.Output[str]
    dbt_key_secret_arn: pulumi.Output[str]
    # The Airflow connection (Secrets Manager JSON form) the DAG's dbt tasks sign in with.
    dbt_airflow_connection: pulumi.Output[str]
    airflow_connections: dict[str, pulumi.Output[str]]
    # Where and as whom Airbyte loads RAW.
    airbyte_target: SnowflakeTarget
    resource_monitor: pulumi.Output[str]

    def __init__(
        self, name: str, args: SnowflakePlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _check_networks(args)
        super().__init__(name, args, opts)

    def _declare(self, name: str, args: SnowflakePlatformArgs) -> Mapping[str, Any]:
        self._naming = n.Naming(args.settings.name_prefix)
        identifier = f"{args.settings.organization_name}-{args.settings.account_name}".upper()
        self.account_identifier = identifier
        # URLs take hyphens where account names have underscores.
        self.host = f"{identifier.lower().replace('_', '-')}.snowflakecomputing.com"
        self._providers = self._create_providers()
        self.databases: dict[str, snowflake.Database] = {}
        self.schemas: dict[tuple[str, str], snowflake.Schema] = {}
        self.database_roles: dict[tuple[str, str], snowflake.DatabaseRole] = {}
        self.roles: dict[str, snowflake.AccountRole] = {}
        self.warehouses: dict[str, snowflake.Warehouse] = {}
        self._create_databases()
        self._create_access_roles()
        self._create_functional_roles()
        monitor = self._create_resource_monitor()
        self._create_warehouses(monitor)
        self._create_service_users()
        self._set_outputs(monitor)
        return {
            "accountIdentifier": self.account_identifier,
            "host": self.host,
            "rawDatabase": self.raw_database,
            "analyticsDatabase": self.analytics_database,
            "loadingWarehouse": self.loading_warehouse,
            "airbyteRole": self.airbyte_role,
            "airbyteUser": self.airbyte_user,
            "dbtUser": self.dbt_user,
            "airbyteKeySecretArn": self.airbyte_key_secret_arn,
            "dbtKeySecretArn": self.dbt_key_secret_arn,
            "dashboardUser": self.dashboard_user,
            "dashboardKeySecretArn": self.dashboard_key_secret_arn,
        }

    def _airflow_cidrs(self) -> pulumi.Output[list[str]] | None:
        if self._args.airflow_egress_ip is None:
            return None
        return pulumi.Output.from_input(self._args.airflow_egress_ip).apply(
            lambda ip: [ip if "/" in ip else f"{ip}/32"]
        )

    def _dbt_cidrs(self) -> pulumi.Input[Sequence[str]]:
        extra = sorted(str(c) for c in self._args.settings.dbt_allowed_cidrs)
        if self._args.airflow_egress_ip is None:
            return extra
        return pulumi.Output.from_input(self._args.airflow_egress_ip).apply(
            lambda ip: sorted({*extra, ip if "/" in ip else f"{ip}/32"})
        )

    # Providers: each object class is managed by the least powerful system role that can.
    def _create_providers(self) -> dict[str, snowflake.Provider]:
        s = self._args.settings
        providers = {}
        for role in (SYSADMIN, SECURITYADMIN, ACCOUNTADMIN):
            providers[role] = snowflake.Provider(
                f"{self._name}-{role.lower()}",
                organization_name=s.organization_name,
                account_name=s.account_name,
                user=s.admin_user,
                authenticator="SNOWFLAKE_JWT",
                private_key=(
                    pulumi.Output.secret(self._args.admin_private_key)
                    if self._args.admin_private_key is not None
                    else None
                ),
                role=role,
                preview_features_enabled=["snowflake_current_account_datasource"],
                opts=pulumi.ResourceOptions(parent=self),
            )
        return providers

    def _opts(
        self, role: str, *, protect: bool = False, depends_on: Sequence[pulumi.Resource] = ()
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._providers[role],
            protect=protect,
            depends_on=list(depends_on),
        )

    def _create_databases(self) -> None:
        for base, schemas in n.SCHEMAS.items():
            db = snowflake.Database(
                f"{self._name}-db-{base.lower()}",
                name=self._naming.database(base),
                comment=f"mdp {self._args.stack}: {_DATABASE_PURPOSE[base]}",
                # Nothing should land in an unmanaged PUBLIC schema.
                drop_public_schema_on_creation=True,
                # Developer models are rebuilt at will: no Fail-safe storage to pay for.
                is_transient=base == n.DBT_DEV,
                opts=self._opts(SYSADMIN, protect=self._args.protect),
            )
            self.databases[base] = db
            for schema in schemas:
                self.schemas[(base, schema)] = snowflake.Schema(
                    f"{self._name}-schema-{base.lower()}-{schema.lower()}",
                    database=db.name,
                    name=schema,
                    # Managed access: only the schema owner grants, and it may set schema-
                    # level future grants without the account-wide MANAGE GRANTS privilege.
                    with_managed_access="true",
                    opts=self._opts(SYSADMIN, protect=self._args.protect),
                )

    def _db_role_fqn(self, base: str, role: str) -> pulumi.Output[str]:
        db_role = self.database_roles[(base, role)]
        return pulumi.Output.all(database=self.databases[base].name, role=db_role.name).apply(
            lambda v: n.quote(v["database"], v["role"])
        )

    def _schema_fqn(self, base: str, schema: str) -> pulumi.Output[str]:
        return pulumi.Output.all(
            database=self.databases[base].name, schema=self.schemas[(base, schema)].name
        ).apply(lambda v: n.quote(v["database"], v["schema"]))

    def _database_role(self, base: str, role: str, comment: str) -> pulumi.Output[str]:
        self.database_roles[(base, role)] = snowflake.DatabaseRole(
            f"{self._name}-dbrole-{base.lower()}-{role.lower()}",
            database=self.databases[base].name,
            name=role,
            comment=comment,
            opts=self._opts(SYSADMIN),
        )
        return self._db_role_fqn(base, role)

    def _grant(
        self,
        suffix: str,
        db_role: pulumi.Output[str],
        privileges: Sequence[str],
        *,
        on_database: pulumi.Input[str] | None = None,
        on_schema: Any = None,
        on_schema_object: Any = None,
    ) -> None:
        # Explicit, sorted, upper-case lists and always_apply off keep `pulumi preview` quiet;
        # OWNERSHIP is never granted here (objects are owned by the role that creates them).
        snowflake.GrantPrivilegesToDatabaseRole(
            f"{self._name}-grant-{suffix}",
            database_role_name=db_role,
            privileges=sorted(privileges),
            on_database=on_database,
            on_schema=on_schema,
            on_schema_object=on_schema_object,
            always_apply=False,
            with_grant_option=False,
            opts=self._opts(SYSADMIN),
        )

    def _create_access_roles(self) -> None:
        db_names = {base: self.databases[base].name for base in self.databases}
        for (base, schema), _ in self.schemas.items():
            if base == n.ADMIN:
                continue
            key = f"{base.lower()}-{schema.lower()}"
            schema_fqn = self._schema_fqn(base, schema)
            reader = self._database_role(base, n.read_role(schema), f"Read {base}.{schema}")
            self._grant(f"{key}-read-db", reader, ["USAGE"], on_database=db_names[base])
            self._grant(
                f"{key}-read-schema", reader, ["USAGE"], on_schema={"schema_name": schema_fqn}
            )
            for plural in n.READ_OBJECT_TYPES[schema]:
                # Current objects, and (at schema level) every object created later: Airbyte
                # dropping and recreating a table keeps readers' access.
                for scope in ("all", "future"):
                    self._grant(
                        f"{key}-read-{scope}-{plural.lower()}",
                        reader,
                        ["SELECT"],
                        on_schema_object={
                            scope: {"object_type_plural": plural, "in_schema": schema_fqn}
                        },
                    )
            writer = self._database_role(base, n.write_role(schema), f"Write {base}.{schema}")
            self._grant(f"{key}-write-db", writer, ["USAGE"], on_database=db_names[base])
            self._grant(
                f"{key}-write-schema",
                writer,
                n.WRITE_PRIVILEGES[schema],
                on_schema={"schema_name": schema_fqn},
            )

    def _create_functional_roles(self) -> None:
        for base in n.FUNCTIONAL_ROLES:
            role = snowflake.AccountRole(
                f"{self._name}-role-{base.lower()}",
                name=self._naming.role(base),
                comment=_ROLE_PURPOSE[base],
                opts=self._opts(SECURITYADMIN),
            )
            self.roles[base] = role
            # SYSADMIN inherits every functional role, so admins can manage what it owns.
            snowflake.GrantAccountRole(
                f"{self._name}-role-{base.lower()}-to-sysadmin",
                role_name=role.name,
                parent_role_name=SYSADMIN,
                opts=self._opts(SECURITYADMIN),
            )
        for access in n.ACCESS_MATRIX:
            snowflake.GrantDatabaseRole(
                f"{self._name}-access-{access.database.lower()}-"
                f"{access.database_role.lower()}-to-{access.functional_role.lower()}",
                database_role_name=self._db_role_fqn(access.database, access.database_role),
                parent_role_name=self.roles[access.functional_role].name,
                opts=self._opts(SECURITYADMIN),
            )
        # SECURITYADMIN owns the network rules, which live in ADMIN.NETWORK.
        admin_db = self.databases[n.ADMIN]
        snowflake.GrantPrivilegesToAccountRole(
            f"{self._name}-grant-admin-db-to-securityadmin",
            account_role_name=SECURITYADMIN,
            privileges=["USAGE"],
            on_account_object={"object_type": "DATABASE", "object_name": admin_db.name},
            always_apply=False,
            opts=self._opts(SYSADMIN),
        )
        snowflake.GrantPrivilegesToAccountRole(
            f"{self._name}-grant-network-schema-to-securityadmin",
            account_role_name=SECURITYADMIN,
            privileges=["CREATE NETWORK RULE", "USAGE"],
            on_schema={"schema_name": self._schema_fqn(n.ADMIN, n.NETWORK_SCHEMA)},
            always_apply=False,
            opts=self._opts(SYSADMIN),
        )

    def _create_resource_monitor(self) -> snowflake.ResourceMonitor:
        s = self._args.settings
        monitor = snowflake.ResourceMonitor(
            f"{self._name}-credit-monitor",
            name=self._naming.resource_monitor(),
            credit_quota=s.credit_quota,
            notify_triggers=list(NOTIFY_AT_PERCENT),
            notify_users=list(s.notify_users) or None,
            suspend_trigger=SUSPEND_AT_PERCENT,
            suspend_immediate_trigger=SUSPEND_IMMEDIATELY_AT_PERCENT,
            opts=self._opts(ACCOUNTADMIN),
        )
        # Lets the warehouse owner attach the monitor; ACCOUNTADMIN does nothing else here.
        self._monitor_grant = snowflake.GrantPrivilegesToAccountRole(
            f"{self._name}-grant-monitor-to-sysadmin",
            account_role_name=SYSADMIN,
            privileges=["MODIFY", "MONITOR"],
            on_account_object={"object_type": "RESOURCE MONITOR", "object_name": monitor.name},
            always_apply=False,
            opts=self._opts(ACCOUNTADMIN),
        )
        return monitor

    def _create_warehouses(self, monitor: snowflake.ResourceMonitor) -> None:
        s = self._args.settings
        for workload in n.WAREHOUSES:
            wh = snowflake.Warehouse(
                f"{self._name}-wh-{workload.lower()}",
                name=self._naming.warehouse(workload),
                comment=f"mdp {self._args.stack}: {workload.lower()} workload",
                warehouse_size=s.warehouse_size,
                auto_suspend=AUTO_SUSPEND_SECONDS,
                auto_resume="true",
                initially_suspended=True,
                enable_query_acceleration="false",
                statement_timeout_in_seconds=s.statement_timeout_seconds,
                statement_queued_timeout_in_seconds=STATEMENT_QUEUED_TIMEOUT_SECONDS,
                resource_monitor=monitor.name,
                opts=self._opts(SYSADMIN, depends_on=[self._monitor_grant]),
            )
            self.warehouses[workload] = wh
            user_role = n.WAREHOUSE_USERS[workload]
            snowflake.GrantPrivilegesToAccountRole(
                f"{self._name}-grant-wh-{workload.lower()}-to-{user_role.lower()}",
                account_role_name=self.roles[user_role].name,
                privileges=["USAGE"],
                on_account_object={"object_type": "WAREHOUSE", "object_name": wh.name},
                always_apply=False,
                opts=self._opts(SYSADMIN),
            )

    def _create_service_users(self) -> None:
        # (user, role, warehouse, database, schema of its default namespace, sign-in networks)
        users: list[tuple[str, str, str, str, str, pulumi.Input[Sequence[str]]]] = [
            (
                n.AIRBYTE_USER, n.AIRBYTE_ROLE, "LOADING", n.RAW, n.RAW_SCHEMA,
                sorted(str(c) for c in self._args.airbyte_cidrs),
            ),
            (n.DBT_USER, n.DATA_ENGINEER, "TRANSFORMING", n.ANALYTICS, "STAGING", self._dbt_cidrs()),
        ]  # fmt: skip
        airflow_cidrs = self._airflow_cidrs()
        if airflow_cidrs is not None:
            # Served from the Airflow host only, so it signs in from that host's egress IP alone.
            users.append(
                (n.DASHBOARD_USER, n.REPORTER, "REPORTING", n.ANALYTICS, "FINANCE", airflow_cidrs)
            )
        a = self._args
        self.service_users: dict[str, ServiceUser] = {
            base: ServiceUser(
                f"{self._name}-{base.lower()}-svc",
                ServiceUserArgs(
                    base=base,
                    naming=self._naming,
                    stack=a.stack,
                    role=self.roles[role],
                    warehouse=self.warehouses[warehouse],
                    database=self.databases[database],
                    schema=schema,
                    cidrs=cidrs,
                    network_database=self.databases[n.ADMIN],
                    network_schema=self.schemas[(n.ADMIN, n.NETWORK_SCHEMA)],
                    securityadmin=self._providers[SECURITYADMIN],
                    account_identifier=self.account_identifier,
                    host=self.host,
                    rsa_bits=a.settings.rsa_bits,
                    key_generation=key_generation(
                        a.settings.key_rotation_days, a.settings.key_rotations.get(base, 0)
                    ),
                    secret_name_prefix=a.secret_name_prefix,
                    secrets_kms_key_id=a.secrets_kms_key_id,
                    secret_recovery_window_days=a.secret_recovery_window_days,
                    tags=a.tags,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            for base, role, warehouse, database, schema, cidrs in users
        }

    def _set_outputs(self, monitor: snowflake.ResourceMonitor) -> None:
        account = snowflake.get_current_account_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self._providers[SYSADMIN])
        )
        self.account_locator = account.account
        self.raw_database = self.databases[n.RAW].name
        self.raw_schema = self.schemas[(n.RAW, n.RAW_SCHEMA)].name
        self.analytics_database = self.databases[n.ANALYTICS].name
        self.dbt_dev_database = self.databases[n.DBT_DEV].name
        self.loading_warehouse = self.warehouses["LOADING"].name
        self.transforming_warehouse = self.warehouses["TRANSFORMING"].name
        self.reporting_warehouse = self.warehouses["REPORTING"].name
        self.airbyte_role = self.roles[n.AIRBYTE_ROLE].name
        self.data_engineer_role = self.roles[n.DATA_ENGINEER].name
        self.reporter_role = self.roles[n.REPORTER].name
        users = self.service_users
        self.airbyte_user = users[n.AIRBYTE_USER].user_name
        self.dbt_user = users[n.DBT_USER].user_name
        self.airbyte_private_key = users[n.AIRBYTE_USER].private_key_pem
        self.dbt_private_key = users[n.DBT_USER].private_key_pem
        self.airbyte_key_secret_arn = users[n.AIRBYTE_USER].key_secret_arn
        self.dbt_key_secret_arn = users[n.DBT_USER].key_secret_arn
        dashboard = users.get(n.DASHBOARD_USER)
        self.dashboard_user = dashboard.user_name if dashboard else None
        self.dashboard_key_secret_arn = dashboard.key_secret_arn if dashboard else None
        self.resource_monitor = monitor.name
        self.dbt_airflow_connection = _secret(
            pulumi.Output.all(
                user=self.dbt_user,
                database=self.analytics_database,
                warehouse=self.transforming_warehouse,
                role=self.data_engineer_role,
                pem=self.dbt_private_key,
            ).apply(lambda v: airflow_connection(self.account_identifier, **v))
        )
        self.airflow_connections = {SNOWFLAKE_CONN_ID: self.dbt_airflow_connection}
        self.airbyte_target = SnowflakeTarget(
            host=self.host,
            database=self.raw_database,
            schema=self.raw_schema,
            role=self.airbyte_role,
            warehouse=self.loading_warehouse,
            user=self.airbyte_user,
            private_key=self.airbyte_private_key,
        )


_DATABASE_PURPOSE = {
    n.RAW: "raw tables written by Airbyte",
    n.ANALYTICS: "dbt models served to reporting",
    n.DBT_DEV: "dbt development builds",
    n.ADMIN: "network rules of the service users",
}
_ROLE_PURPOSE = {
    n.DATA_ENGINEER: "mdp: reads RAW, builds and owns the dbt models",
    n.AIRBYTE_ROLE: "mdp: loads RAW.POSTGRES_AIRBYTE",
    n.REPORTER: "mdp: reads ANALYTICS.FINANCE for the dashboard",
}
