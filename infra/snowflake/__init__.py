"""Snowflake as code: the component, its config section and its naming."""

from infra.snowflake.config import SnowflakeConfig
from infra.snowflake.platform import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake.service_user import ServiceUser, ServiceUserArgs

__all__ = [
    "ServiceUser",
    "ServiceUserArgs",
    "SnowflakeConfig",
    "SnowflakePlatform",
    "SnowflakePlatformArgs",
]
