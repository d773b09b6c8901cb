"""Stack output names: the contract read by people operating the stack (docs/aws.md), CI and the tests.

Every output has a reader; docs/aws.md says who reads what. The program exports them all in one
place (`stacks/__main__.py`), and those in `SECRET_OUTPUTS` only as secrets.
"""

from __future__ import annotations

from typing import Final

# Source database (RDS PostgreSQL): reach it through the bastion's tunnel.
DB_ENDPOINT: Final = "dbEndpoint"
DB_PORT: Final = "dbPort"
DB_NAME: Final = "dbName"
DB_MASTER_SECRET_ARN: Final = "dbMasterSecretArn"
DB_REPLICATION_USER: Final = "dbReplicationUser"
DB_REPLICATION_SECRET_ARN: Final = "dbReplicationSecretArn"
# Embeds the replication user's password: always an Output.secret.
DB_REPLICATION_CONNECTION_URI: Final = "dbReplicationConnectionUri"

# Generator / bastion host: the SSH tunnel to the database, and its SSM target.
BASTION_PUBLIC_IP: Final = "bastionPublicIp"
BASTION_PUBLIC_DNS: Final = "bastionPublicDns"
BASTION_TUNNEL_USER: Final = "bastionTunnelUser"
BASTION_TUNNEL_KEY_SECRET_ARN: Final = "bastionTunnelKeySecretArn"
GENERATOR_INSTANCE_ID: Final = "generatorInstanceId"

# Which engine runs Airflow: `ec2` (the host below) or `mwaa` (the MWAA outputs below).
AIRFLOW_ENGINE: Final = "airflowEngine"
# Airflow host (engine ec2): its SSM target.
AIRFLOW_INSTANCE_ID: Final = "airflowInstanceId"
# The dashboard's SSM port-forwarding target (port 8501): the Airflow host with engine ec2, the
# dashboard host with engine mwaa; set when Snowflake has a dashboard user.
DASHBOARD_INSTANCE_ID: Final = "dashboardInstanceId"
# MWAA (engine mwaa): the environment, its private web server, and the object versions it runs
# (plugins.zip, requirements.txt, startup.sh): the previous deploy's are the rollback target.
MWAA_ENVIRONMENT_NAME: Final = "mwaaEnvironmentName"
MWAA_WEBSERVER_URL: Final = "mwaaWebserverUrl"
MWAA_OBJECT_VERSIONS: Final = "mwaaObjectVersions"
# The stable public address Airflow (dbt) connects from: for Snowflake's network policy.
AIRFLOW_EGRESS_IP: Final = "airflowEgressIp"

# Airbyte Cloud: the ids to import the resources again if the state is lost.
AIRBYTE_SOURCE_ID: Final = "airbyteSourceId"
AIRBYTE_DESTINATION_ID: Final = "airbyteDestinationId"
AIRBYTE_CONNECTION_ID: Final = "airbyteConnectionId"

# Alerts (infra/alerts.py), when `mdp:alerts` is set: the SNS topic the DAG's notifier publishes to.
ALERTS_TOPIC_ARN: Final = "alertsTopicArn"

# Buckets: the release the hosts run, and where `mdp export` writes.
ARTIFACT_BUCKET: Final = "artifactBucket"
ARTIFACT_KEY: Final = "artifactKey"
EXPORTS_BUCKET: Final = "exportsBucket"

# Outputs that carry a credential; the program exports them only as Output.secret.
SECRET_OUTPUTS: Final = frozenset({DB_REPLICATION_CONNECTION_URI})

# Snowflake (infra/snowflake): the names a dbt profile, the dashboard or an admin session needs.
# Private keys are never exported: only the ARNs of their secrets.
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
