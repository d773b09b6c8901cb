"""The `mdp:aws.airflow.mwaa` section: the size, workers, schedulers and upgrade window of MWAA."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, ValidationInfo, field_validator

from infra.mwaa import bundle
from infra.sections import Section
from infra.storage import REPO_ROOT

# MWAA's environment classes, smallest first (the price table prices each one).
EnvironmentClass = Literal[
    "mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"
]
ENVIRONMENT_CLASSES: tuple[str, ...] = get_args(EnvironmentClass)
# The newest Airflow MWAA runs (docs/mwaa.md cites the AWS page that lists it).
MWAA_AIRFLOW_VERSION = "3.0.6"
# What MWAA accepts: mw1.micro runs one scheduler and one worker; the others 2 to 5 schedulers
# and up to 25 workers.
MICRO = "mw1.micro"
MAX_WORKERS = 25
SCHEDULERS = (2, 5)
# DAY:HH:MM in UTC, on the hour or the half hour, as MWAA's API takes it.
_WINDOW = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$")


class MwaaSettings(Section):
    """Amazon MWAA, used when `aws.airflow.engine` is `mwaa`."""

    environment_class: EnvironmentClass = Field("mw1.small", examples=["mw1.small"])
    min_workers: int = Field(1, examples=[1])
    max_workers: int = Field(5, examples=[5])
    schedulers: int = Field(2, examples=[2])
    weekly_maintenance_window_start: str = Field("SUN:03:00", examples=["SUN:03:00"])
    airflow_version: str = Field(
        MWAA_AIRFLOW_VERSION, pattern=r"^\d+\.\d+\.\d+$", examples=[MWAA_AIRFLOW_VERSION]
    )

    @field_validator("min_workers")
    @classmethod
    def _min_workers(cls, v: int, info: ValidationInfo) -> int:
        klass = info.data.get("environment_class")
        top = 1 if klass == MICRO else MAX_WORKERS
        if not 1 <= v <= top:
            raise ValueError(f"MWAA runs 1 to {top} workers on {_named(klass)}")
        return v

    @field_validator("max_workers")
    @classmethod
    def _max_workers(cls, v: int, info: ValidationInfo) -> int:
        klass = info.data.get("environment_class")
        top = 1 if klass == MICRO else MAX_WORKERS
        if not 1 <= v <= top:
            raise ValueError(f"MWAA runs 1 to {top} workers on {_named(klass)}")
        low = info.data.get("min_workers")
        if low is not None and v < low:
            raise ValueError(f"maxWorkers must be at least minWorkers ({low})")
        return v

    @field_validator("schedulers")
    @classmethod
    def _schedulers(cls, v: int, info: ValidationInfo) -> int:
        klass = info.data.get("environment_class")
        low, high = (1, 1) if klass == MICRO else SCHEDULERS
        if not low <= v <= high:
            span = "exactly 1 scheduler" if low == high else f"{low} to {high} schedulers"
            raise ValueError(f"MWAA runs {span} on {_named(klass)}")
        return v

    @field_validator("airflow_version")
    @classmethod
    def _airflow_version(cls, v: str) -> str:
        # The bundle's requirements.txt is built under the constraints kept for this version.
        kept = bundle.kept_versions()
        if v not in kept:
            folder = bundle.CONSTRAINTS_DIR
            if folder.is_relative_to(REPO_ROOT):
                folder = folder.relative_to(REPO_ROOT)
            raise ValueError(
                f"has no constraints kept in {folder.as_posix()}/ (kept: {', '.join(kept) or 'none'}): "
                "use a kept version, or first generate its constraints with "
                f"`uv run --frozen python -m infra.mwaa.constraints {v} <its release date>`"
            )
        return v

    @field_validator("weekly_maintenance_window_start")
    @classmethod
    def _window(cls, v: str) -> str:
        if not _WINDOW.match(v):
            raise ValueError("must be DAY:HH:MM in UTC on the hour or half hour, such as SUN:03:00")
        return v


def _named(klass: object) -> str:
    # The class failed its own check when it is missing here: its error is reported as well.
    return str(klass) if klass else "any environment class"
