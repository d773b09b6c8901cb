"""The mdp Pulumi program: reads the stack config, builds the components, exports the outputs."""

from __future__ import annotations

import pulumi

from infra import outputs
from infra.config import StackConfig, load_stack_config
from infra.snowflake import SnowflakePlatform, SnowflakePlatformArgs


# --- Snowflake (infra/snowflake) -------------------------------------------------------------
def build_snowflake(
    config: StackConfig, airflow_egress_ip: pulumi.Input[str] | None = None
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
    return platform


# --- end Snowflake ---------------------------------------------------------------------------


def main() -> None:
    # Validation happens here, before the first resource is declared.
    config: StackConfig = load_stack_config()
    # Components are built in dependency order: network, database, hosts; then Snowflake and
    # Airbyte (each when its config section is set); then the Airflow host, which receives
    # their connection values.
    # The Airflow host's egress IP (an AWS output) limits where the dbt user signs in from.
    build_snowflake(config, airflow_egress_ip=None)


main()
