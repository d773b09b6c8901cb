"""Waiting for an Airbyte Cloud sync: the provider's deferrable sensor, also waiting through `queued`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airbyte_api.models import JobStatusEnum
from airflow.providers.airbyte.hooks.airbyte import AirbyteHook
from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor
from airflow.providers.airbyte.triggers.airbyte import AirbyteSyncTrigger
from airflow.triggers.base import TriggerEvent

try:
    from airflow.providers.common.compat.sdk import AirflowException
except ImportError:  # MWAA's Airflow 3.0 ships a common-compat provider without `sdk`.
    from airflow.exceptions import AirflowException

# Airbyte Cloud answers `queued` while a capacity-based plan has no worker free for the sync.
# The provider counts only pending, running and incomplete as waiting: on `queued` its sensor
# fails the task and its trigger reports the job as failed, though the job runs later.
# By value: the airbyte-api release MWAA's constraints pin has no QUEUED member.
WAITING = frozenset({"pending", "queued", "running", "incomplete"})


def is_waiting(status: object) -> bool:
    return str(getattr(status, "value", status)).lower() in WAITING


# Status reads in a row that may fail (a timeout, a dropped connection, a 5xx answer) before
# the wait gives up: one slow answer from Airbyte must not fail a sync that is running fine.
STATUS_READ_ATTEMPTS = 5


def _unreadable(job_id: int, failures: int, exc: BaseException) -> str:
    return (
        f"Could not read the status of Airbyte job {job_id} {failures} times in a row "
        f"({type(exc).__name__}: {exc}). The job may still be running in Airbyte, and RAW is "
        "as the last successful sync left it. Check the job and the Airbyte connection in "
        "Airflow, then clear the `sync` task to wait again."
    )


def _name(status: Any) -> str:
    return str(getattr(status, "value", status))


def _ended(job_id: int, status: Any) -> str:
    return (
        f"Airbyte job {job_id} ended {_name(status)}: nothing downstream ran. RAW may hold part "
        "of this job's rows (Airbyte commits as it goes); the next successful sync completes "
        "them. Look at the job's logs in Airbyte, fix the cause, then clear the "
        "`airbyte_trigger_sync` task to sync again."
    )


class AirbyteJobTrigger(AirbyteSyncTrigger):
    """Polls the job every `poll_interval` seconds until it ends or `end_time` passes."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        job_id = int(self.job_id)
        failures = 0
        while True:
            try:
                status = AirbyteHook(airbyte_conn_id=self.conn_id).get_job_status(job_id)
            except Exception as exc:
                failures += 1
                if failures >= STATUS_READ_ATTEMPTS:
                    message = _unreadable(job_id, failures, exc)
                    yield TriggerEvent({"status": "error", "message": message, "job_id": job_id})
                    return
                self.log.warning(
                    "Reading the status of Airbyte job %s failed (%s of %s tries in a row): %s",
                    job_id,
                    failures,
                    STATUS_READ_ATTEMPTS,
                    exc,
                )
                await asyncio.sleep(self.poll_interval)
                continue
            failures = 0
            if status == JobStatusEnum.SUCCEEDED:
                message = f"Airbyte job {job_id} succeeded."
                yield TriggerEvent({"status": "success", "message": message, "job_id": job_id})
                return
            if not is_waiting(status):
                kind = "cancelled" if status == JobStatusEnum.CANCELLED else "error"
                yield TriggerEvent(
                    {"status": kind, "message": _ended(job_id, status), "job_id": job_id}
                )
                return
            if time.time() >= self.end_time:
                message = (
                    f"Airbyte job {job_id} is still {_name(status)} at the sensor's timeout; "
                    "it was left running in Airbyte. Raise MDP_DAG_SYNC_TIMEOUT_SECONDS if "
                    "syncs take this long, then clear the `sync` task to wait again."
                )
                yield TriggerEvent({"status": "error", "message": message, "job_id": job_id})
                return
            await asyncio.sleep(self.poll_interval)


class AirbyteSyncSensor(AirbyteJobSensor):
    """Waits for the sync job, deferred to the triggerer, polling every `poke_interval` seconds.

    The provider's sensor polls from the triggerer every 60 s whatever `poke_interval` says.
    """

    def _status(self) -> Any:
        hook = AirbyteHook(airbyte_conn_id=self.airbyte_conn_id, api_version=self.api_version)
        return hook.get_job_details(job_id=int(self.airbyte_job_id)).status

    _read_failures = 0

    def poke(self, context: Any) -> bool:
        try:
            status = self._status()
        except Exception as exc:
            self._read_failures += 1
            if self._read_failures >= STATUS_READ_ATTEMPTS:
                raise AirflowException(
                    _unreadable(int(self.airbyte_job_id), self._read_failures, exc)
                ) from exc
            self.log.warning(
                "Reading the status of Airbyte job %s failed (%s of %s tries in a row): %s",
                self.airbyte_job_id,
                self._read_failures,
                STATUS_READ_ATTEMPTS,
                exc,
            )
            return False
        self._read_failures = 0
        if status == JobStatusEnum.SUCCEEDED:
            return True
        if is_waiting(status):
            self.log.info("Airbyte job %s is %s.", self.airbyte_job_id, _name(status))
            return False
        raise AirflowException(_ended(int(self.airbyte_job_id), status))

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            self.log.info("Airbyte job %s succeeded.", self.airbyte_job_id)
            return None
        self.defer(
            trigger=AirbyteJobTrigger(
                job_id=int(self.airbyte_job_id),
                conn_id=self.airbyte_conn_id,
                end_time=time.time() + self.timeout,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )
        return None
