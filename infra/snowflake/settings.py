"""Typed, validated Snowflake section of the stack config (`mdp:snowflake`)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from infra.snowflake.naming import valid_prefix

# Snowflake's default statement timeout is two days; a runaway query on a suspended-by-
# monitor budget is the failure this caps.
MAX_STATEMENT_TIMEOUT_SECONDS = 4 * 3600
MIN_RSA_BITS = 2048


class SnowflakeSettings(BaseModel):
    """`pulumi config set --path mdp:snowflake.<key> <value>` sets each field."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    organization_name: str = Field(min_length=1, description="Snowflake organization name")
    account_name: str = Field(min_length=1, description="Snowflake account name")
    admin_user: str = Field(
        default="PULUMI_MDP", min_length=1, description="the user Pulumi deploys as"
    )
    name_prefix: str = Field(
        default="", description="prefix of every account-level name, e.g. DEV_"
    )
    credit_quota: int = Field(gt=0, le=10_000, description="monthly credits for the stack")
    warehouse_size: Literal["XSMALL", "SMALL", "MEDIUM"] = "XSMALL"
    statement_timeout_seconds: int = Field(default=3600, ge=60, le=MAX_STATEMENT_TIMEOUT_SECONDS)
    airbyte_allowed_cidrs: tuple[str, ...] = Field(min_length=1)
    dbt_allowed_cidrs: tuple[str, ...] = ()
    notify_users: tuple[str, ...] = ()
    rsa_bits: int = Field(default=4096, ge=MIN_RSA_BITS, le=8192)

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not valid_prefix(value):
            raise ValueError(
                "must be empty or upper-case letters, digits and underscores ending in '_' "
                "(for example DEV_)"
            )
        return value

    @field_validator("airbyte_allowed_cidrs", "dbt_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                network = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IPv4 address or CIDR ({exc})") from exc
            if network.prefixlen < 16:
                raise ValueError(f"{cidr!r} is broader than /16; list the exact egress IPs")
        return value

    def problems_for_stack(self, stack: str) -> list[str]:
        """Cross-field checks that depend on the stack name."""
        if stack != "prod" and not self.name_prefix:
            return [
                f"stack {stack!r} has an empty snowflake.namePrefix, so its databases, roles "
                "and users would take prod's names in a shared account"
            ]
        return []
