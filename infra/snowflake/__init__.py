"""Snowflake as code: the component, its config section and its naming."""

from infra.snowflake.config import SnowflakeConfig
from infra.snowflake.platform import SnowflakePlatform, SnowflakePlatformArgs

__all__ = ["SnowflakeConfig", "SnowflakePlatform", "SnowflakePlatformArgs"]
