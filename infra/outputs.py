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

# Buckets and keys
ARTIFACT_BUCKET: Final = "artifactBucket"
ARTIFACT_KEY: Final = "artifactKey"
EXPORTS_BUCKET: Final = "exportsBucket"
EXPORTS_BUCKET_ARN: Final = "exportsBucketArn"
KMS_KEY_ARN: Final = "kmsKeyArn"

# Outputs that carry a credential; the program exports them only as Output.secret.
SECRET_OUTPUTS: Final = frozenset({DB_REPLICATION_CONNECTION_URI})
