"""Typed DAG settings read from the environment, so one DAG file serves the local and cloud targets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from core import paths

# Cloud wiring: names the Airflow host resolves through its Secrets Manager backend, written
# there by the Pulumi program under the same ids.
from core.connections import AIRBYTE_CONN_ID as AIRBYTE_CONN_ID
from core.connections import AIRBYTE_CONNECTION_ID_VARIABLE as AIRBYTE_CONNECTION_ID_VARIABLE
from core.connections import ALERTS_TOPIC_VARIABLE as ALERTS_TOPIC_VARIABLE
from core.connections import SNOWFLAKE_CONN_ID as SNOWFLAKE_CONN_ID
from core.target import Target, UnknownTarget, current_target

DAG_ID = "mdp_daily"

# How Cosmos runs the dbt project. `local`: one dbt call per model task. `watcher`: one
# `dbt build` of the whole project in a producer task, and one sensor task per model (and one
# per model's tests) that reports the model's result as the build reaches it, and runs the
# model itself when retried or cleared.
EXECUTION_MODE_ENV = "MDP_DBT_EXECUTION_MODE"
EXECUTION_MODES = ("local", "watcher")
# Watcher mode on the local target: the build, and model tasks reading its progress beside it.
# With four, three model tasks waiting on the build held every slot, and the rest finished one
# by one after it (measured under the scheduler: 43-47 s of a run outside the build with four,
# 38 s with six, 30-31 s with eight).
LOCAL_WATCHER_TASKS = 8


class SettingsError(ValueError):
    """A setting has a value the DAG cannot use; the message names the variable and the fix."""


def execution_mode(default: str = "local") -> str:
    """`MDP_DBT_EXECUTION_MODE`, or `default` when it is unset or empty."""
    raw = os.environ.get(EXECUTION_MODE_ENV, "")
    mode = raw.strip().lower() or default
    if mode not in EXECUTION_MODES:
        raise SettingsError(
            f"{EXECUTION_MODE_ENV}={raw!r} is not a dbt execution mode; unset it ({default}) "
            f"or set {EXECUTION_MODE_ENV}=local or {EXECUTION_MODE_ENV}=watcher"
        )
    return mode


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number; unset it or set e.g. {name}={default}"
        ) from None
    if value < minimum:
        raise SettingsError(
            f"{name}={value} is below {minimum}; unset it or set e.g. {name}={default}"
        )
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(name: str, default: timedelta) -> timedelta:
    """A duration such as `2h`, `90m` or `5400s` (a bare number is seconds)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    number, unit = (raw[:-1], raw[-1]) if raw[-1] in _DURATION_UNITS else (raw, "s")
    if not number.isdigit() or int(number) == 0:
        raise SettingsError(
            f"{name}={raw!r} is not a duration; unset it (2 hours) or set e.g. {name}=2h, "
            f"{name}=90m or {name}=5400s"
        )
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit])


@dataclass(frozen=True)
class Settings:
    """Everything the DAG reads from the environment, validated once at parse time."""

    target: Target
    schedule: str | None
    retries: int
    retry_delay: timedelta
    task_timeout: timedelta
    sync_timeout: timedelta
    airbyte_poll_interval: timedelta
    # How long after its scheduled time (or, unscheduled, after it was queued) a run must have
    # finished before it raises an alert.
    deadline: timedelta
    cycles_per_day: int
    rows_per_cycle: int | None
    seed: int | None
    dbt_project_dir: Path
    dbt_manifest: Path
    dbt_profiles_yml: Path
    dbt_target: str
    dbt_execution_mode: str = "local"

    @classmethod
    def from_env(cls) -> Settings:
        try:
            target = current_target()
        except UnknownTarget as error:
            raise SettingsError(str(error)) from None
        project = paths.transform_dir()
        manifest = Path(os.environ.get("MDP_DBT_MANIFEST", project / "target" / "manifest.json"))
        profiles = Path(os.environ.get("MDP_DBT_PROFILES_YML", project / "profiles.yml"))
        rows = _int("MDP_ROWS_PER_CYCLE", 0)
        seed = os.environ.get("MDP_SEED")
        return cls(
            target=target,
            # Set but empty: no schedule, the DAG runs only when triggered.
            schedule=os.environ.get("MDP_DAG_SCHEDULE", "@daily") or None,
            retries=_int("MDP_DAG_RETRIES", 2),
            retry_delay=timedelta(seconds=_int("MDP_DAG_RETRY_DELAY_SECONDS", 300)),
            task_timeout=timedelta(seconds=_int("MDP_DAG_TASK_TIMEOUT_SECONDS", 30 * 60, 1)),
            sync_timeout=timedelta(seconds=_int("MDP_DAG_SYNC_TIMEOUT_SECONDS", 3 * 60 * 60, 1)),
            airbyte_poll_interval=timedelta(seconds=_int("MDP_AIRBYTE_POLL_SECONDS", 60, 1)),
            deadline=_duration("MDP_DAG_DEADLINE", timedelta(hours=2)),
            cycles_per_day=_int("MDP_CYCLES_PER_DAY", 12, 1),
            rows_per_cycle=rows or None,
            seed=_int("MDP_SEED", 0) if seed else None,
            dbt_project_dir=project,
            dbt_manifest=manifest.resolve(),
            dbt_profiles_yml=profiles.resolve(),
            dbt_target=os.environ.get("MDP_DBT_TARGET", "local" if target == "local" else "prod"),
            dbt_execution_mode=execution_mode(),
        )
