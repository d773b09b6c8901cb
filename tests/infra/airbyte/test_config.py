"""The `mdp:airbyte` config section: defaults, and clear errors before any resource exists."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, StackConfig, build_stack_config
from infra.mockrun import stack_config
from tests.infra.snowflake.conftest import snowflake_config

WORKSPACE = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
CREDENTIALS = {"airbyte:clientId": "app-id", "airbyte:clientSecret": "app-secret"}


def load(airbyte: dict[str, Any] | None, stack: str = "dev", **extra: Any) -> StackConfig:
    raw = stack_config(stack) | {"mdp:snowflake": snowflake_config(stack)} | extra
    if airbyte is not None:
        raw["mdp:airbyte"] = airbyte

    def read(namespace: str, key: str) -> Any:
        return raw.get(f"{namespace}:{key}")

    return build_stack_config(stack, read)


def test_defaults_sync_daily_at_17_utc_by_cursor() -> None:
    cfg = load({"workspaceId": WORKSPACE}, **CREDENTIALS).airbyte
    assert cfg is not None
    assert (cfg.schedule_type, cfg.cron, cfg.timezone) == ("cron", "0 0 17 * * ?", "UTC")
    assert cfg.replication_method == "cursor"
    assert cfg.schema_change_policy == "propagate_columns"


def test_section_is_optional() -> None:
    assert load(None).airbyte is None


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("cron", "0 17 * * *", "Quartz cron expression of 6 or 7 fields"),
        ("cron", "0 * 17 * * ?", "more than once an hour"),
        ("timezone", "Mars/Olympus", "IANA time zone"),
        ("scheduleType", "hourly", "'cron' or 'manual'"),
        ("workspaceId", "not-a-uuid", "pattern"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({"workspaceId": WORKSPACE, key: value}, **CREDENTIALS)
    message = str(err.value)
    assert f"mdp:airbyte.{key}" in message and says in message
    assert f"pulumi config set --path 'airbyte.{key}'" in message
    assert "no resource was declared" in message


def test_unknown_key_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        load({"workspaceId": WORKSPACE, "timeZone": "UTC"}, **CREDENTIALS)
    assert "mdp:airbyte.timeZone: unknown key (did you mean 'timezone'?)" in str(err.value)


def test_missing_credentials_say_which_secret_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        load({"workspaceId": WORKSPACE})
    assert "pulumi config set --secret airbyte:clientSecret" in str(err.value)
    with pytest.raises(ConfigError):
        load({"workspaceId": WORKSPACE}, **{"airbyte:clientId": "only-the-id"})


def test_airbyte_needs_the_snowflake_destination() -> None:
    with pytest.raises(ConfigError) as err:
        load({"workspaceId": WORKSPACE}, **CREDENTIALS, **{"mdp:snowflake": None})
    assert "mdp:snowflake" in str(err.value) and "pulumi config rm mdp:airbyte" in str(err.value)


def test_a_bearer_token_alone_is_enough() -> None:
    cfg = load({"workspaceId": WORKSPACE}, **{"airbyte:bearerAuth": "token"}).airbyte
    assert cfg is not None


def test_cdc_needs_logical_replication_on_the_source() -> None:
    with pytest.raises(ConfigError) as err:
        load({"workspaceId": WORKSPACE, "replicationMethod": "cdc"}, **CREDENTIALS)
    assert "mdp:aws.database.logicalReplication" in str(err.value)
    assert "pulumi config set --path 'aws.database.logicalReplication' true" in str(err.value)
    raw_aws = stack_config("dev")["mdp:aws"]
    raw_aws = raw_aws | {"database": raw_aws["database"] | {"logicalReplication": True}}
    cfg = load(
        {"workspaceId": WORKSPACE, "replicationMethod": "cdc"},
        **CREDENTIALS,
        **{"mdp:aws": raw_aws},
    ).airbyte
    assert cfg is not None and cfg.replication_method == "cdc"
