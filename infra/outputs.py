"""Stack output names: the contract read by the generator, Airflow, the plan command and CI."""

from __future__ import annotations

from typing import Final

# Network
VPC_ID: Final = "vpcId"
PUBLIC_SUBNET_ID: Final = "publicSubnetId"
PRIVATE_SUBNET_IDS: Final = "privateSubnetIds"

# Source database (RDS PostgreSQL)
DB_ENDPOINT: Final = "dbEndpoint"
DB_PORT: Final = "dbPort"
DB_NAME: Final = "dbName"
DB_MASTER_SECRET_ARN: Final = "dbMasterSecretArn"
DB_REPLICATION_USER: Final = "dbReplicationUser"
DB_REPLICATION_SECRET_ARN: Final = "dbReplicationSecretArn"
# Without a credential: safe in plain text.
DB_CONNECTION_URI: Final = "dbConnectionUri"
# Embeds the replication user's password: always an Output.secret.
DB_REPLICATION_CONNECTION_URI: Final = "dbReplicationConnectionUri"

# Generator / bastion host
BASTION_PUBLIC_IP: Final = "bastionPublicIp"
BASTION_PUBLIC_DNS: Final = "bastionPublicDns"
BASTION_TUNNEL_USER: Final = "bastionTunnelUser"
BASTION_TUNNEL_KEY_SECRET_ARN: Final = "bastionTunnelKeySecretArn"
GENERATOR_INSTANCE_ID: Final = "generatorInstanceId"

# Airflow host and its Secrets Manager backend
AIRFLOW_INSTANCE_ID: Final = "airflowInstanceId"
# The stable public address Airflow (dbt) connects from: for Snowflake's network policy.
AIRFLOW_EGRESS_IP: Final = "airflowEgressIp"
AIRFLOW_CONNECTIONS_PREFIX: Final = "airflowConnectionsPrefix"
AIRFLOW_VARIABLES_PREFIX: Final = "airflowVariablesPrefix"
AIRFLOW_SECRET_ARNS: Final = "airflowSecretArns"

# Airbyte Cloud; Airflow triggers syncs of the connection by its id.
AIRBYTE_SOURCE_ID: Final = "airbyteSourceId"
AIRBYTE_DESTINATION_ID: Final = "airbyteDestinationId"
AIRBYTE_CONNECTION_ID: Final = "airbyteConnectionId"

# Buckets and keys
ARTIFACT_BUCKET: Final = "artifactBucket"
ARTIFACT_KEY: Final = "artifactKey"
EXPORTS_BUCKET: Final = "exportsBucket"
EXPORTS_BUCKET_ARN: Final = "exportsBucketArn"
KMS_KEY_ARN: Final = "kmsKeyArn"

# Outputs that carry a credential; the program exports them only as Output.secret.
SECRET_OUTPUTS: Final = frozenset({DB_REPLICATION_CONNECTION_URI})

# Snowflake (infra/snowflake). Private keys are never exported: only the ARNs of their secrets.
SNOWFLAKE_ACCOUNT: Final = "snowflakeAccount"
SNOWFLAKE_ACCOUNT_LOCATOR: Final = "snowflakeAccountLocator"
SNOWFLAKE_HOST: Final = "snowflakeHost"
SNOWFLAKE_RAW_DATABASE: Final = "snowflakeRawDatabase"
SNOWFLAKE_RAW_SCHEMA: Final = "snowflakeRawSchema"
SNOWFLAKE_ANALYTICS_DATABASE: Final = "snowflakeAnalyticsDatabase"
SNOWFLAKE_DBT_DEV_DATABASE: Final = "snowflakeDbtDevDatabase"
SNOWFLAKE_LOADING_WAREHOUSE: Final = "snowflakeLoadingWarehouse"
SNOWFLAKE_TRANSFORMING_WAREHOUSE: Final = "snowflakeTransformingWarehouse"
SNOWFLAKE_REPORTING_WAREHOUSE: Final = "snowflakeReportingWarehouse"
SNOWFLAKE_AIRBYTE_ROLE: Final = "snowflakeAirbyteRole"
SNOWFLAKE_DATA_ENGINEER_ROLE: Final = "snowflakeDataEngineerRole"
SNOWFLAKE_REPORTER_ROLE: Final = "snowflakeReporterRole"
SNOWFLAKE_AIRBYTE_USER: Final = "snowflakeAirbyteUser"
SNOWFLAKE_DBT_USER: Final = "snowflakeDbtUser"
SNOWFLAKE_DASHBOARD_USER: Final = "snowflakeDashboardUser"
SNOWFLAKE_AIRBYTE_KEY_SECRET_ARN: Final = "snowflakeAirbyteKeySecretArn"
SNOWFLAKE_DBT_KEY_SECRET_ARN: Final = "snowflakeDbtKeySecretArn"
# Read by the dashboard unit on the Airflow host (its role may read exactly this secret).
SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN: Final = "snowflakeDashboardKeySecretArn"
SNOWFLAKE_RESOURCE_MONITOR: Final = "snowflakeResourceMonitor"
