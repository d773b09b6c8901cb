"""The mdp Pulumi program: reads the stack config, builds the components, exports the outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from core.connections import ALERTS_TOPIC_VARIABLE
from infra import outputs
from infra.airbyte import AirbyteCloud, AirbyteCloudArgs, ApiApplication
from infra.airbyte.client import CONFIG_CLIENT_ID, CONFIG_CLIENT_SECRET, DEFAULT_SERVER_URL
from infra.alerts import (
    Alerts,
    AlertsArgs,
    WatchedDatabase,
    WatchedHost,
    default_max_connections,
    topic_arn,
)
from infra.config import ConfigError, ConfigIssue, StackConfig, load_stack_config
from infra.database import Database, DatabaseArgs
from infra.encryption import EncryptionKey, EncryptionKeyArgs
from infra.hosts import (
    AirflowHost,
    AirflowHostArgs,
    DashboardArgs,
    DashboardHost,
    DashboardHostArgs,
    GeneratorHost,
    GeneratorHostArgs,
    HostCommon,
)
from infra.mwaa.environment import MwaaEnvironment, MwaaEnvironmentArgs
from infra.network import Network, NetworkArgs
from infra.snowflake import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake import naming as n
from infra.storage import Storage, StorageArgs

Exports = dict[str, pulumi.Input[Any]]


def build_snowflake(
    config: StackConfig,
    secrets_kms_key_id: pulumi.Input[str] | None = None,
    airflow_egress_ip: pulumi.Input[str] | None = None,
) -> SnowflakePlatform | None:
    """The Snowflake objects, when `mdp:snowflake` is set."""
    if config.snowflake is None:
        return None
    settings = config.snowflake
    return SnowflakePlatform(
        "snowflake",
        SnowflakePlatformArgs(
            settings=settings,
            stack=config.stack,
            protect=config.is_prod,
            airbyte_cidrs=[
                str(c) for c in (settings.airbyte_allowed_cidrs or config.aws.airbyte_cidrs)
            ],
            airflow_egress_ip=airflow_egress_ip,
            # Unset: the provider reads SNOWFLAKE_PRIVATE_KEY from the environment instead.
            admin_private_key=pulumi.Config("snowflake").get_secret("privateKey"),
            secrets_kms_key_id=secrets_kms_key_id,
            secret_recovery_window_days=30 if config.is_prod else 7,
        ),
    )


def snowflake_exports(platform: SnowflakePlatform) -> Exports:
    """Names and secret ARNs only: private keys stay in Secrets Manager."""
    exports: Exports = {
        outputs.SNOWFLAKE_ACCOUNT: platform.account_identifier,
        outputs.SNOWFLAKE_ACCOUNT_LOCATOR: platform.account_locator,
        outputs.SNOWFLAKE_HOST: platform.host,
        outputs.SNOWFLAKE_RAW_DATABASE: platform.raw_database,
        outputs.SNOWFLAKE_RAW_SCHEMA: platform.raw_schema,
        outputs.SNOWFLAKE_ANALYTICS_DATABASE: platform.analytics_database,
        outputs.SNOWFLAKE_DBT_DEV_DATABASE: platform.dbt_dev_database,
        outputs.SNOWFLAKE_LOADING_WAREHOUSE: platform.loading_warehouse,
        outputs.SNOWFLAKE_TRANSFORMING_WAREHOUSE: platform.transforming_warehouse,
        outputs.SNOWFLAKE_REPORTING_WAREHOUSE: platform.reporting_warehouse,
        outputs.SNOWFLAKE_AIRBYTE_ROLE: platform.airbyte_role,
        outputs.SNOWFLAKE_DATA_ENGINEER_ROLE: platform.data_engineer_role,
        outputs.SNOWFLAKE_REPORTER_ROLE: platform.reporter_role,
        outputs.SNOWFLAKE_AIRBYTE_USER: platform.airbyte_user,
        outputs.SNOWFLAKE_DBT_USER: platform.dbt_user,
        outputs.SNOWFLAKE_AIRBYTE_KEY_SECRET_ARN: platform.airbyte_key_secret_arn,
        outputs.SNOWFLAKE_DBT_KEY_SECRET_ARN: platform.dbt_key_secret_arn,
        outputs.SNOWFLAKE_RESOURCE_MONITOR: platform.resource_monitor,
    }
    if platform.dashboard_user is not None and platform.dashboard_key_secret_arn is not None:
        exports[outputs.SNOWFLAKE_DASHBOARD_USER] = platform.dashboard_user
        exports[outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN] = platform.dashboard_key_secret_arn
    return exports


def snowflake_dashboard(platform: SnowflakePlatform) -> DashboardArgs | None:
    """The dashboard's Snowflake sign-in for the Airflow host: names and its key's secret ARN."""
    if platform.dashboard_user is None or platform.dashboard_key_secret_arn is None:
        return None
    return DashboardArgs(
        account=platform.account_identifier,
        user=platform.dashboard_user,
        role=platform.reporter_role,
        warehouse=platform.reporting_warehouse,
        database=platform.analytics_database,
        key_secret_arn=platform.dashboard_key_secret_arn,
    )


def raw_database_name(config: StackConfig) -> str:
    """The name Snowflake's RAW database gets in this stack (prefixed in a shared account)."""
    prefix = config.snowflake.name_prefix if config.snowflake is not None else ""
    return n.Naming(prefix).database(n.RAW)


def airflow_application() -> ApiApplication | None:
    """The Airbyte application Airflow signs in as; None when only a token is configured."""
    api = pulumi.Config("airbyte")
    client_id = api.get(CONFIG_CLIENT_ID.partition(":")[2])
    client_secret = api.get_secret(CONFIG_CLIENT_SECRET.partition(":")[2])
    if not client_id or client_secret is None:
        pulumi.log.warn(
            "Airbyte is configured with a token only; Airflow's Airbyte hook needs "
            "airbyte:clientId and airbyte:clientSecret to trigger syncs."
        )
        return None
    return ApiApplication(client_id, client_secret, api.get("serverUrl") or DEFAULT_SERVER_URL)


def build_airbyte(
    config: StackConfig,
    database: Database,
    generator: GeneratorHost,
    snowflake: SnowflakePlatform | None,
) -> AirbyteCloud | None:
    """Airbyte Cloud source, destination and connection, when `mdp:airbyte` is set."""
    settings = config.airbyte
    if settings is None or snowflake is None:
        return None
    return AirbyteCloud(
        "airbyte",
        AirbyteCloudArgs(
            workspace_id=settings.workspace_id,
            name_prefix=f"{config.project}-{config.stack}",
            source=database.replication_login,
            tunnel=generator.tunnel,
            destination=snowflake.airbyte_target,
            replication_method=settings.replication_method,
            cdc_publication=settings.cdc_publication,
            cdc_replication_slot=settings.cdc_replication_slot,
            schedule_type=settings.schedule_type,
            cron=settings.cron,
            timezone=settings.timezone,
            schema_change_policy=settings.schema_change_policy,
            airflow_application=airflow_application(),
        ),
    )


def build_alerts(
    config: StackConfig,
    key: EncryptionKey,
    database: Database,
    generator: GeneratorHost,
    airflow: AirflowHost | MwaaEnvironment,
    dashboard_host: DashboardHost | None = None,
) -> Alerts | None:
    """The alert topic, alarms and budget, when `mdp:alerts` names a recipient."""
    settings = config.alerts
    if settings is None or not settings.configured:
        return None
    db = config.aws.database
    max_connections = settings.db_max_connections or default_max_connections(db.instance_class)
    if max_connections is None:
        # Validated here rather than in the section: it depends on the database's class.
        raise ConfigError(
            config.stack,
            [
                ConfigIssue(
                    key="mdp:alerts.dbMaxConnections",
                    problem=f"no known connection limit for {db.instance_class}",
                    fix="pulumi config set --path 'alerts.dbMaxConnections' <limit> "
                    f"--stack {config.stack}",
                )
            ],
        )
    webhook = settings.webhook_url
    return Alerts(
        "alerts",
        AlertsArgs(
            stack=config.stack,
            region=config.aws.region,
            kms_key_arn=key.key_arn,
            emails=settings.emails,
            webhook_url=pulumi.Output.secret(webhook.get_secret_value())
            if webhook is not None
            else None,
            monthly_budget_usd=config.cost.monthly_budget_usd,
            hosts=[
                WatchedHost("generator", generator.instance_id),
                *(
                    [WatchedHost("airflow", airflow.instance_id, root_disk=True)]
                    if isinstance(airflow, AirflowHost)
                    else []
                ),
                *(
                    [WatchedHost("dashboard", dashboard_host.instance_id)]
                    if dashboard_host is not None
                    else []
                ),
            ],
            mwaa_environment=airflow.name if isinstance(airflow, MwaaEnvironment) else None,
            database=WatchedDatabase(
                identifier=database.identifier,
                allocated_storage_gb=db.allocated_storage_gb,
                max_connections=max_connections,
            ),
        ),
    )


def build_airflow(
    config: StackConfig,
    network: Network,
    storage: Storage,
    key: EncryptionKey,
    common: HostCommon,
    snowflake: SnowflakePlatform | None,
    connections: dict[str, pulumi.Input[str]],
    variables: dict[str, pulumi.Input[str]],
    alerts_topic: pulumi.Input[str] | None = None,
) -> AirflowHost | MwaaEnvironment:
    """Airflow on the engine `aws.airflow.engine` names; both read the same secrets and may
    publish the DAG's alerts to the stack's topic."""
    aws_cfg = config.aws
    if aws_cfg.airflow.engine == "mwaa":
        assert storage.mwaa_source_bucket is not None and storage.mwaa_source_bucket_arn is not None
        return MwaaEnvironment(
            "airflow",
            MwaaEnvironmentArgs(
                stack=config.stack,
                region=aws_cfg.region,
                settings=aws_cfg.airflow.mwaa,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
                kms_key_arn=key.key_arn,
                source_bucket=storage.mwaa_source_bucket,
                source_bucket_arn=storage.mwaa_source_bucket_arn,
                exports_bucket=storage.exports_bucket,
                exports_bucket_arn=storage.exports_bucket_arn,
                log_retention_days=aws_cfg.log_retention_days,
                protect=aws_cfg.protect,
                connections=connections,
                variables=variables,
                raw_database=raw_database_name(config),
                alerts_topic_arn=alerts_topic,
            ),
        )
    return AirflowHost(
        "airflow",
        AirflowHostArgs(
            common=common,
            subnet_id=network.public_subnet_id
            if aws_cfg.airflow.public_subnet
            else network.private_subnet_ids.apply(lambda ids: ids[0]),
            public_ip=aws_cfg.airflow.public_subnet,
            settings=aws_cfg.airflow,
            exports_bucket_arn=storage.exports_bucket_arn,
            eip_allocation_id=network.airflow_eip_allocation_id,
            connections=connections,
            variables=variables,
            dashboard=snowflake_dashboard(snowflake) if snowflake is not None else None,
            raw_database=raw_database_name(config),
            alerts_topic_arn=alerts_topic,
        ),
    )


def build_dashboard_host(
    config: StackConfig,
    network: Network,
    common: HostCommon,
    snowflake: SnowflakePlatform | None,
    airflow: AirflowHost | MwaaEnvironment,
) -> DashboardHost | None:
    """MWAA serves no dashboard: a small private host runs the Airflow host's dashboard unit."""
    dashboard = snowflake_dashboard(snowflake) if snowflake is not None else None
    if isinstance(airflow, AirflowHost) or dashboard is None:
        return None
    return DashboardHost(
        "dashboard",
        DashboardHostArgs(
            common=common,
            # Out through the NAT gateway: the egress address Snowflake lets the dashboard user in from.
            subnet_id=network.private_subnet_ids.apply(lambda ids: ids[0]),
            settings=config.aws.dashboard,
            dashboard=dashboard,
        ),
    )


def main() -> None:
    # Validation happens here, before the first resource is declared.
    config: StackConfig = load_stack_config()
    aws_cfg, stack = config.aws, config.stack

    key = EncryptionKey(
        "kms",
        EncryptionKeyArgs(
            stack=stack,
            region=aws_cfg.region,
            deletion_window_days=30 if config.is_prod else 7,
            protect=aws_cfg.protect,
        ),
    )
    network = Network(
        "network",
        NetworkArgs(
            stack=stack,
            region=aws_cfg.region,
            cidr=aws_cfg.vpc_cidr,
            availability_zones=aws_cfg.availability_zones,
            nat_gateway=aws_cfg.nat_gateway,
            flow_log_retention_days=aws_cfg.flow_log_retention_days,
            kms_key_arn=key.key_arn,
            # MWAA always runs in the private subnets and leaves through the NAT gateway.
            airflow_public=aws_cfg.airflow.public_subnet and aws_cfg.airflow.engine == "ec2",
        ),
    )
    storage = Storage(
        "storage",
        StorageArgs(
            stack=stack,
            kms_key_arn=key.key_arn,
            force_destroy=aws_cfg.force_destroy_buckets,
            protect=aws_cfg.protect,
            mwaa_source=aws_cfg.airflow.engine == "mwaa",
        ),
    )
    database = Database(
        "source-db",
        DatabaseArgs(
            stack=stack,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            settings=aws_cfg.database,
            kms_key_arn=key.key_arn,
            log_retention_days=aws_cfg.log_retention_days,
            protect=aws_cfg.protect,
        ),
    )
    common = HostCommon(
        stack=stack,
        region=aws_cfg.region,
        vpc_id=network.vpc_id,
        kms_key_arn=key.key_arn,
        artifact_bucket=storage.artifact_bucket,
        artifact_bucket_arn=storage.artifact_bucket_arn,
        artifact_parameter_name=storage.artifact_parameter_name,
        artifact_parameter_arn=storage.artifact_parameter_arn,
        protect=aws_cfg.protect,
    )
    generator = GeneratorHost(
        "generator",
        GeneratorHostArgs(
            common=common,
            subnet_id=network.public_subnet_id,
            settings=aws_cfg.generator,
            ssh_cidrs=(*aws_cfg.airbyte_cidrs, *aws_cfg.admin_cidrs),
            database=database.access,
        ),
    )

    # Snowflake and Airbyte plug in here, each when its config section is set; each hands the
    # Airflow host its own connections (secret JSON) and variables. `network.airflow_egress_ip`
    # is known before the Airflow host exists, for Snowflake's network policy on the dbt user.
    snowflake = build_snowflake(
        config, secrets_kms_key_id=key.key_arn, airflow_egress_ip=network.airflow_egress_ip
    )
    airbyte = build_airbyte(config, database, generator, snowflake)
    airflow_connections: dict[str, pulumi.Input[str]] = {
        **(snowflake.airflow_connections if snowflake is not None else {}),
        **(airbyte.airflow_connections if airbyte is not None else {}),
    }
    alerting = config.alerts is not None and config.alerts.configured
    alerts_topic = topic_arn(stack, aws_cfg.region) if alerting else None
    airflow_variables: dict[str, pulumi.Input[str]] = {
        "mdp_exports_bucket": storage.exports_bucket,
        "mdp_stack": stack,
        # Airflow triggers syncs of this connection (always in manual mode, on demand otherwise).
        **(airbyte.airflow_variables if airbyte is not None else {}),
        # The DAG's alerts go to the stack's topic (none without `mdp:alerts`).
        **({ALERTS_TOPIC_VARIABLE: alerts_topic} if alerts_topic is not None else {}),
    }

    airflow = build_airflow(
        config,
        network,
        storage,
        key,
        common,
        snowflake,
        airflow_connections,
        airflow_variables,
        alerts_topic,
    )

    dashboard_host = build_dashboard_host(config, network, common, snowflake, airflow)

    alerts = build_alerts(config, key, database, generator, airflow, dashboard_host)

    exports: Exports = {
        outputs.DB_ENDPOINT: database.address,
        outputs.DB_PORT: database.port,
        outputs.DB_NAME: database.db_name,
        outputs.DB_MASTER_SECRET_ARN: database.master_secret_arn,
        outputs.DB_REPLICATION_USER: database.replication_username,
        outputs.DB_REPLICATION_SECRET_ARN: database.replication_secret_arn,
        outputs.DB_REPLICATION_CONNECTION_URI: database.replication_connection_uri,
        outputs.BASTION_PUBLIC_IP: generator.public_ip,
        outputs.BASTION_PUBLIC_DNS: generator.public_dns,
        outputs.BASTION_TUNNEL_USER: generator.tunnel_user,
        outputs.BASTION_TUNNEL_KEY_SECRET_ARN: generator.tunnel_key_secret_arn,
        outputs.GENERATOR_INSTANCE_ID: generator.instance_id,
        outputs.AIRFLOW_ENGINE: aws_cfg.airflow.engine,
        outputs.AIRFLOW_EGRESS_IP: network.airflow_egress_ip,
        outputs.ARTIFACT_BUCKET: storage.artifact_bucket,
        outputs.ARTIFACT_KEY: storage.artifact_key,
        outputs.EXPORTS_BUCKET: storage.exports_bucket,
    }
    if isinstance(airflow, AirflowHost):
        exports[outputs.AIRFLOW_INSTANCE_ID] = airflow.instance_id
        if snowflake is not None and snowflake_dashboard(snowflake) is not None:
            exports[outputs.DASHBOARD_INSTANCE_ID] = airflow.instance_id
    else:
        exports |= {
            outputs.MWAA_ENVIRONMENT_NAME: airflow.name,
            outputs.MWAA_WEBSERVER_URL: airflow.webserver_url,
            outputs.MWAA_OBJECT_VERSIONS: airflow.object_versions,
        }
    if dashboard_host is not None:
        exports[outputs.DASHBOARD_INSTANCE_ID] = dashboard_host.instance_id
    if snowflake is not None:
        exports |= snowflake_exports(snowflake)
    if alerts is not None:
        exports[outputs.ALERTS_TOPIC_ARN] = alerts.topic_arn
    if airbyte is not None:
        exports |= {
            outputs.AIRBYTE_SOURCE_ID: airbyte.source_id,
            outputs.AIRBYTE_DESTINATION_ID: airbyte.destination_id,
            outputs.AIRBYTE_CONNECTION_ID: airbyte.connection_id,
        }
    for name, value in exports.items():
        # The output contract says which outputs carry a credential; those go out as secrets.
        pulumi.export(
            name, pulumi.Output.secret(value) if name in outputs.SECRET_OUTPUTS else value
        )


main()
