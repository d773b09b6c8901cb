"""Which target this process runs against: `MDP_TARGET`, parsed in one place."""

from __future__ import annotations

import os
from typing import Literal, get_args

Target = Literal["local", "cloud"]
TARGETS: tuple[Target, ...] = get_args(Target)
TARGET_ENV = "MDP_TARGET"


class UnknownTarget(ValueError):
    """`MDP_TARGET` names no target."""


def current_target() -> Target:
    """`local` (embedded PostgreSQL, DuckDB) unless `MDP_TARGET` says `cloud` (RDS, Snowflake)."""
    value = os.environ.get(TARGET_ENV, "local").strip().lower()
    for target in TARGETS:
        if value == target:
            return target
    raise UnknownTarget(
        f"{TARGET_ENV}={value!r} is not a target; use {TARGET_ENV}=local or {TARGET_ENV}=cloud "
        "(local: the embedded PostgreSQL and DuckDB; cloud: RDS and Snowflake)."
    )
