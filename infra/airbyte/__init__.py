"""Airbyte Cloud as code: dynamic providers over the airbyte-api SDK and the component using them."""

from infra.airbyte.client import ApiSettings
from infra.airbyte.component import (
    DEFAULT_CRON,
    DEFAULT_TIMEZONE,
    AirbyteCloud,
    AirbyteCloudArgs,
    ApiApplication,
    catalog_streams,
    quartz_with_timezone,
)
from infra.airbyte.kinds import ScheduleType
from infra.airbyte.resources import Connection, PostgresSource, SnowflakeDestination

__all__ = [
    "DEFAULT_CRON",
    "DEFAULT_TIMEZONE",
    "AirbyteCloud",
    "AirbyteCloudArgs",
    "ApiApplication",
    "ApiSettings",
    "Connection",
    "PostgresSource",
    "ScheduleType",
    "SnowflakeDestination",
    "catalog_streams",
    "quartz_with_timezone",
]
