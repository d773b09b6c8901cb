"""The `mdp:snowflake` config section: account, names, cost guard and service-user networks."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from infra.policies.rules.snowflake import MAX_STATEMENT_TIMEOUT_SECONDS
from infra.sections import Section
from infra.snowflake import naming as n
from infra.snowflake.rotation import DEFAULT_ROTATION_DAYS

_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*_)?$")

WarehouseSize = Literal["XSMALL", "SMALL", "MEDIUM"]


def _narrow_cidr(net: IPv4Network) -> IPv4Network:
    if net.prefixlen < 16:
        raise ValueError(f"{net} is broader than /16; list the exact egress addresses")
    return net


SignInCidr = Annotated[IPv4Network, AfterValidator(_narrow_cidr)]


class SnowflakeConfig(Section):
    """Snowflake account, names, cost guard and service-user networks (`mdp:snowflake`)."""

    organization_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", examples=["MYORG"])
    account_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", examples=["MDP"])
    # The key-pair user Pulumi signs in as (see the README's one-time bootstrap).
    admin_user: str = Field("PULUMI_MDP", min_length=1, examples=["PULUMI_MDP"])
    # Prefix of every account-level name, so dev and prod can share one account.
    name_prefix: str = Field("", examples=["DEV_"])
    # True when this stack has a Snowflake account of its own: then no prefix is needed and
    # the names match the data contract exactly (RAW, ANALYTICS, ...).
    dedicated_account: bool = Field(False, examples=[True])
    credit_quota: int = Field(gt=0, le=10_000, examples=[20])
    warehouse_size: WarehouseSize = Field("XSMALL", examples=["XSMALL"])
    # The policy pack's ceiling is the config's ceiling: a value it would refuse never gets in.
    statement_timeout_seconds: int = Field(
        3600, ge=60, le=MAX_STATEMENT_TIMEOUT_SECONDS, examples=[3600]
    )
    # Empty means Airbyte Cloud's IPs from `aws.airbyteCidrs`.
    airbyte_allowed_cidrs: tuple[SignInCidr, ...] = Field((), examples=["13.37.4.46/32"])
    # Added to the Airflow host's stable egress IP, where the dbt user signs in from.
    dbt_allowed_cidrs: tuple[SignInCidr, ...] = Field((), examples=["198.51.100.7/32"])
    notify_users: tuple[str, ...] = Field((), examples=["ADMIN_USER"])
    rsa_bits: int = Field(4096, ge=2048, le=8192, examples=[4096])
    # Each service user's key is replaced this often, without downtime (see docs/operations.md).
    key_rotation_days: int = Field(DEFAULT_ROTATION_DAYS, ge=1, le=365, examples=[90])
    # Rotations on demand, per user (AIRBYTE, DBT, DASHBOARD): `mdp rotate-key` raises them.
    key_rotations: dict[str, Annotated[int, Field(ge=0)]] = Field({}, examples=[{"DBT": 1}])

    @field_validator("key_rotations")
    @classmethod
    def _known_users(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(n.SERVICE_USERS))
        if unknown:
            raise ValueError(
                f"names {', '.join(unknown)}; the service users are {', '.join(n.SERVICE_USERS)}"
            )
        return v

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX.match(v):
            raise ValueError(
                "must be empty or upper-case letters, digits and underscores ending in '_'"
            )
        return v
