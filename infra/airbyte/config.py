"""The `mdp:airbyte` config section: the workspace, when the connection syncs, and how it reads."""

from __future__ import annotations

import re
import zoneinfo
from typing import Literal

from pydantic import Field, field_validator

from infra.airbyte.kinds import ScheduleType
from infra.sections import Section

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_QUARTZ_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")

DEFAULT_CRON = "0 0 17 * * ?"  # Quartz: daily at 17:00
DEFAULT_TIMEZONE = "UTC"

ReplicationMethod = Literal["cursor", "cdc"]
SchemaChangePolicy = Literal["ignore", "disable_connection", "propagate_columns", "propagate_fully"]


class AirbyteConfig(Section):
    """Airbyte Cloud (`mdp:airbyte`): the workspace, when the connection syncs, and how it reads."""

    workspace_id: str = Field(pattern=_UUID, examples=["5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"])
    # "manual" leaves the schedule to Airflow, which triggers each sync.
    schedule_type: ScheduleType = Field("cron", examples=["manual"])
    # Quartz (seconds first), as Airbyte reads it; the time zone is a separate key.
    cron: str = Field(DEFAULT_CRON, examples=["0 0 17 * * ?"])
    timezone: str = Field(DEFAULT_TIMEZONE, examples=["Europe/Paris"])
    replication_method: ReplicationMethod = Field("cursor", examples=["cdc"])
    cdc_publication: str = Field(
        "airbyte_publication", pattern=_PG_IDENTIFIER, examples=["airbyte_publication"]
    )
    cdc_replication_slot: str = Field(
        "airbyte_slot", pattern=_PG_IDENTIFIER, examples=["airbyte_slot"]
    )
    schema_change_policy: SchemaChangePolicy = Field(
        "propagate_columns", examples=["propagate_columns"]
    )

    @field_validator("cron")
    @classmethod
    def _quartz(cls, v: str) -> str:
        parts = v.split()
        if len(parts) not in (6, 7) or not all(_QUARTZ_FIELD.match(p) for p in parts):
            raise ValueError(
                f"{v!r} is not a Quartz cron expression of 6 or 7 fields (seconds first), "
                "such as '0 0 17 * * ?' for daily at 17:00; set the zone in airbyte.timezone"
            )
        if "*" in parts[0] or "*" in parts[1]:
            raise ValueError(f"{v!r} runs more than once an hour, below Airbyte's minimum")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not an IANA time zone such as UTC or Europe/Paris"
            ) from None
        return v
