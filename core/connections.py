"""The Airflow connection and variable ids the Pulumi program writes and the DAG reads."""

from __future__ import annotations

from typing import Final

# Airbyte Cloud's API (the Airbyte provider's connection type), and the Airflow variable that
# holds the id of the Airbyte connection the DAG syncs.
AIRBYTE_CONN_ID: Final = "airbyte_cloud"
AIRBYTE_CONNECTION_ID_VARIABLE: Final = "mdp_airbyte_connection_id"
# Snowflake as the dbt service user: Cosmos' profile mapping and the export task read it.
SNOWFLAKE_CONN_ID: Final = "snowflake_dbt"
# The ARN of the stack's SNS alert topic: the DAG's alerts go there on the cloud target.
ALERTS_TOPIC_VARIABLE: Final = "mdp_alerts_topic_arn"
