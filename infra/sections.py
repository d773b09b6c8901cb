"""The base of every config section, and the project and stack names every component shares."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

PROJECT = "mdp"
StackName = Literal["dev", "prod"]
STACKS: tuple[StackName, ...] = get_args(StackName)


class Section(BaseModel):
    """Base of every config section: immutable, camelCase keys as in `Pulumi.<stack>.yaml`, unknown keys rejected.

    A component keeps its section next to itself (`infra/snowflake/config.py`, `infra/cost.py`,
    ...) and adds one optional field to `StackConfig` (for example
    `snowflake: SnowflakeConfig | None = None`); the loader reads it from the structured config
    key `mdp:<field name>` and reports errors with the fix command.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )
