"""The mdp Pulumi program: reads the stack config, builds the components, exports the outputs."""

from __future__ import annotations

import pulumi

from infra import outputs
from infra.airbyte import AirbyteCloud, AirbyteCloudArgs
from infra.airbyte.client import DEFAULT_SERVER_URL
from infra.config import StackConfig, load_stack_config
from infra.database import Database, DatabaseArgs
from infra.encryption import EncryptionKey, EncryptionKeyArgs
from infra.hosts import (
    AirflowHost,
    AirflowHostArgs,
    DashboardArgs,
    GeneratorHost,
    GeneratorHostArgs,
    HostCommon,
)
from infra.network import Network, NetworkArgs
from infra.snowflake import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake import naming as n
from infra.storage import Storage, StorageArgs

# --- Snowflake (infra/snowflake) -------------------------------------------------------------
# The connection id the DAG's dbt tasks read (orchestration/include/settings.py).
SNOWFLAKE_AIRFLOW_CONN_ID = "snowflake_dbt"


def build_snowflake(
    config: StackConfig,
    secrets_kms_key_id: pulumi.Input[str] | None = None,
    airflow_egress_ip: pulumi.Input[str] | None = None,
) -> SnowflakePlatform | None:
    """The Snowflake objects, when `mdp:snowflake` is set; exports names and secret ARNs only."""
    if config.snowflake is None:
        return None
    settings = config.snowflake
    platform = SnowflakePlatform(
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
    for name, value in {
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
    }.items():
        pulumi.export(name, value)
    if platform.dashboard_user is not None and platform.dashboard_key_secret_arn is not None:
        pulumi.export(outputs.SNOWFLAKE_DASHBOARD_USER, platform.dashboard_user)
        pulumi.export(outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN, platform.dashboard_key_secret_arn)
    return platform


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


# --- end Snowflake ---------------------------------------------------------------------------


# --- Airbyte (infra/airbyte) ----------------------------------------------------------------
AIRFLOW_AIRBYTE_CONN_ID = "airbyte_cloud"
AIRFLOW_AIRBYTE_CONNECTION_ID_VARIABLE = "mdp_airbyte_connection_id"


def build_airbyte(
    config: StackConfig,
    database: Database,
    generator: GeneratorHost,
    snowflake: SnowflakePlatform | None,
    airflow_connections: dict[str, pulumi.Input[str]],
    airflow_variables: dict[str, pulumi.Input[str]],
) -> AirbyteCloud | None:
    """Airbyte Cloud source, destination and connection, when `mdp:airbyte` is set."""
    settings = config.airbyte
    if settings is None or snowflake is None:
        return None
    cloud = AirbyteCloud(
        "airbyte",
        AirbyteCloudArgs(
            workspace_id=settings.workspace_id,
            name_prefix=f"{config.project}-{config.stack}",
            db_host=database.address,
            db_port=database.port,
            db_name=database.db_name,
            db_username=database.replication_username,
            db_password=database.replication_password,
            tunnel_host=generator.public_ip,
            tunnel_user=generator.tunnel_user,
            tunnel_private_key=generator.tunnel_private_key,
            snowflake_host=snowflake.host,
            snowflake_database=snowflake.raw_database,
            snowflake_schema=snowflake.raw_schema,
            snowflake_role=snowflake.airbyte_role,
            snowflake_warehouse=snowflake.loading_warehouse,
            snowflake_username=snowflake.airbyte_user,
            snowflake_private_key=snowflake.airbyte_private_key,
            replication_method=settings.replication_method,
            cdc_publication=settings.cdc_publication,
            cdc_replication_slot=settings.cdc_replication_slot,
            schedule_mode=settings.schedule,
            cron=settings.cron,
            timezone=settings.timezone,
            schema_change_policy=settings.schema_change_policy,
        ),
    )
    # Airflow triggers syncs of this connection (always in manual mode, on demand otherwise).
    airflow_variables[AIRFLOW_AIRBYTE_CONNECTION_ID_VARIABLE] = cloud.connection_id
    api = pulumi.Config("airbyte")
    client_id, client_secret = api.get("clientId"), api.get_secret("clientSecret")
    if client_id and client_secret is not None:
        server_url = (api.get("serverUrl") or DEFAULT_SERVER_URL).rstrip("/")
        airflow_connections[AIRFLOW_AIRBYTE_CONN_ID] = pulumi.Output.secret(
            pulumi.Output.json_dumps(
                {
                    "conn_type": "airbyte",
                    "host": f"{server_url}/",
                    "login": client_id,
                    "password": client_secret,
                    # An absolute token URL: the hook's relative default assumes a bare host.
                    "schema": f"{server_url}/applications/token",
                }
            )
        )
    else:
        pulumi.log.warn(
            "Airbyte is configured with a token only; Airflow's Airbyte hook needs "
            "airbyte:clientId and airbyte:clientSecret to trigger syncs."
        )
    pulumi.export(outputs.AIRBYTE_SOURCE_ID, cloud.source_id)
    pulumi.export(outputs.AIRBYTE_DESTINATION_ID, cloud.destination_id)
    pulumi.export(outputs.AIRBYTE_CONNECTION_ID, cloud.connection_id)
    return cloud


# --- end Airbyte -----------------------------------------------------------------------------


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
            airflow_public=aws_cfg.airflow.public_subnet,
        ),
    )
    storage = Storage(
        "storage",
        StorageArgs(
            stack=stack,
            kms_key_arn=key.key_arn,
            force_destroy=aws_cfg.force_destroy_buckets,
            protect=aws_cfg.protect,
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
            db_host=database.address,
            db_port=database.port,
            db_name=database.db_name,
            db_security_group_id=database.security_group_id,
            db_master_secret_arn=database.master_secret_arn,
            db_replication_secret_arn=database.replication_secret_arn,
            logical_replication=aws_cfg.database.logical_replication,
        ),
    )

    # Snowflake and Airbyte components plug in here, each when its config section is set, and
    # add their Airflow connections (secret JSON) and variables to these two mappings.
    # `network.airflow_egress_ip` is known before the Airflow host exists, for Snowflake's
    # network policy on the dbt user.
    airflow_connections: dict[str, pulumi.Input[str]] = {}
    airflow_variables: dict[str, pulumi.Input[str]] = {
        "mdp_exports_bucket": storage.exports_bucket,
        "mdp_stack": stack,
    }

    # --- Snowflake (infra/snowflake) ---------------------------------------------------------
    snowflake = build_snowflake(
        config, secrets_kms_key_id=key.key_arn, airflow_egress_ip=network.airflow_egress_ip
    )
    dashboard: DashboardArgs | None = None
    if snowflake is not None:
        airflow_connections[SNOWFLAKE_AIRFLOW_CONN_ID] = snowflake.dbt_airflow_connection
        dashboard = snowflake_dashboard(snowflake)
    # --- end Snowflake -----------------------------------------------------------------------

    # --- Airbyte (infra/airbyte) -------------------------------------------------------------
    build_airbyte(config, database, generator, snowflake, airflow_connections, airflow_variables)
    # --- end Airbyte -------------------------------------------------------------------------

    airflow = AirflowHost(
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
            connections=airflow_connections,
            variables=airflow_variables,
            dashboard=dashboard,
            raw_database=raw_database_name(config),
        ),
    )

    pulumi.export(outputs.VPC_ID, network.vpc_id)
    pulumi.export(outputs.PUBLIC_SUBNET_ID, network.public_subnet_id)
    pulumi.export(outputs.PRIVATE_SUBNET_IDS, network.private_subnet_ids)
    pulumi.export(outputs.KMS_KEY_ARN, key.key_arn)
    pulumi.export(outputs.DB_ENDPOINT, database.address)
    pulumi.export(outputs.DB_PORT, database.port)
    pulumi.export(outputs.DB_NAME, database.db_name)
    pulumi.export(outputs.DB_MASTER_SECRET_ARN, database.master_secret_arn)
    pulumi.export(outputs.DB_REPLICATION_USER, database.replication_username)
    pulumi.export(outputs.DB_REPLICATION_SECRET_ARN, database.replication_secret_arn)
    pulumi.export(outputs.DB_CONNECTION_URI, database.connection_uri)
    pulumi.export(
        outputs.DB_REPLICATION_CONNECTION_URI,
        pulumi.Output.secret(database.replication_connection_uri),
    )
    pulumi.export(outputs.BASTION_PUBLIC_IP, generator.public_ip)
    pulumi.export(outputs.BASTION_PUBLIC_DNS, generator.public_dns)
    pulumi.export(outputs.BASTION_TUNNEL_USER, generator.tunnel_user)
    pulumi.export(outputs.BASTION_TUNNEL_KEY_SECRET_ARN, generator.tunnel_key_secret_arn)
    pulumi.export(outputs.GENERATOR_INSTANCE_ID, generator.instance_id)
    pulumi.export(outputs.AIRFLOW_INSTANCE_ID, airflow.instance_id)
    pulumi.export(outputs.AIRFLOW_EGRESS_IP, network.airflow_egress_ip)
    pulumi.export(outputs.AIRFLOW_CONNECTIONS_PREFIX, airflow.connections_prefix)
    pulumi.export(outputs.AIRFLOW_VARIABLES_PREFIX, airflow.variables_prefix)
    pulumi.export(outputs.AIRFLOW_SECRET_ARNS, airflow.secret_arns)
    pulumi.export(outputs.ARTIFACT_BUCKET, storage.artifact_bucket)
    pulumi.export(outputs.ARTIFACT_KEY, storage.artifact_key)
    pulumi.export(outputs.EXPORTS_BUCKET, storage.exports_bucket)
    pulumi.export(outputs.EXPORTS_BUCKET_ARN, storage.exports_bucket_arn)


main()
