"""Snowflake as code: the component, its config section and its naming."""

from infra.snowflake.platform import SnowflakePlatform, SnowflakePlatformArgs
from infra.snowflake.settings import SnowflakeSettings

__all__ = ["SnowflakePlatform", "SnowflakePlatformArgs", "SnowflakeSettings"]
