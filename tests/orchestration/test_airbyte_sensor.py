"""The cloud DAG's Airbyte sensor and trigger against the fake Airbyte API: queued, running, ended."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rehearsal.fake_airbyte import FakeAirbyte

CONN_ID = "airbyte_cloud"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAirbyte]:
    from airbyte_api._hooks.clientcredentials import ClientCredentialsHook

    server = FakeAirbyte().start()
    # The SDK caches OAuth tokens per client id for the whole process; each fake issues its own.
    ClientCredentialsHook._sessions.clear()
    # The connection's shape as the stack writes it to Secrets Manager.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRBYTE_CLOUD",
        json.dumps(
            {
                "conn_type": "airbyte",
                "host": f"{server.url}/",
                "login": server.client_id,
                "password": server.client_secret,
                "schema": f"{server.url}/applications/token",
            }
        ),
    )
    yield server
    server.stop()


def _submit(fake: FakeAirbyte) -> int:
    from airflow.providers.airbyte.hooks.airbyte import AirbyteHook

    connection_id = fake.add_connection()
    return int(AirbyteHook(airbyte_conn_id=CONN_ID).submit_sync_connection(connection_id).job_id)


def _sensor(job_id: int, **kw: Any) -> Any:
    from orchestration.include.airbyte import AirbyteSyncSensor

    args: dict[str, Any] = {"deferrable": True, "poke_interval": 0.01, "timeout": 30}
    return AirbyteSyncSensor(
        task_id="sync", airbyte_conn_id=CONN_ID, airbyte_job_id=job_id, **(args | kw)
    )


def _defer(sensor: Any) -> Any:
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    return deferred.value.trigger


def _event(trigger: Any) -> dict[str, Any]:
    async def first() -> Any:
        return await anext(trigger.run())

    return dict(asyncio.run(first()).payload)


def test_a_queued_job_defers_and_the_trigger_waits_until_it_succeeds(fake: FakeAirbyte) -> None:
    from airflow.sdk._shared.module_loading import import_string

    from orchestration.include.airbyte import AirbyteJobTrigger

    fake.queued_polls = 2
    job_id = _submit(fake)
    sensor = _sensor(job_id)
    trigger = _defer(sensor)
    assert isinstance(trigger, AirbyteJobTrigger)
    assert trigger.poll_interval == 0.01
    # The triggerer rebuilds the trigger from its serialized form.
    classpath, kwargs = trigger.serialize()
    trigger = import_string(classpath)(**kwargs)

    event = _event(trigger)
    assert event["status"] == "success", event
    assert fake.jobs[job_id].answered == ["queued", "queued", "running", "succeeded"]
    assert sensor.execute_complete(context={}, event=event) is None


def test_the_provider_sensor_alone_fails_a_queued_job(fake: FakeAirbyte) -> None:
    """Why the DAG has its own sensor: remove it once the provider waits through `queued`."""
    from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor

    fake.queued_polls = 1
    sensor = AirbyteJobSensor(
        task_id="sync", airbyte_conn_id=CONN_ID, airbyte_job_id=_submit(fake), deferrable=True
    )
    with pytest.raises(Exception, match="unexpected state"):
        sensor.execute(context={})


def test_a_failed_job_fails_the_sensor_with_what_to_do(fake: FakeAirbyte) -> None:
    fake.failing_jobs.append("Failure in source: connection refused")
    job_id = _submit(fake)
    sensor = _sensor(job_id)
    event = _event(_defer(sensor))
    assert event["status"] == "error"
    assert fake.jobs[job_id].answered == ["running", "failed"]
    with pytest.raises(RuntimeError, match=f"Airbyte job {job_id} ended failed") as raised:
        sensor.execute_complete(context={}, event=event)
    assert "nothing downstream ran" in str(raised.value)
    assert "the next successful sync completes them" in str(raised.value)


def test_a_job_still_running_at_the_timeout_is_reported_and_left_running(
    fake: FakeAirbyte,
) -> None:
    import threading

    release = threading.Event()
    fake.sync = lambda connection: int(release.wait(30))
    job_id = _submit(fake)
    try:
        trigger = _defer(_sensor(job_id, timeout=0.2, poke_interval=0.05))
        event = _event(trigger)
    finally:
        release.set()
    assert event["status"] == "error"
    assert "still running at the sensor's timeout" in event["message"]
    assert "MDP_DAG_SYNC_TIMEOUT_SECONDS" in event["message"]
    assert fake.requests("DELETE", "/v1/jobs/.*") == []


def test_poke_mode_waits_through_queued(fake: FakeAirbyte) -> None:
    fake.queued_polls = 1
    sensor = _sensor(_submit(fake), deferrable=False)
    assert sensor.poke(context={}) is False  # queued
    # The next answers are `running` and then, once the job is done, `succeeded`.
    fake.jobs[1].done.wait(5)
    assert sensor.poke(context={}) is False
    assert sensor.poke(context={}) is True


def test_the_trigger_waits_through_failed_status_reads(fake: FakeAirbyte) -> None:
    """A timed-out or failed status read is retried: one slow answer does not fail the sync."""
    from orchestration.include.airbyte import STATUS_READ_ATTEMPTS

    fake.queued_polls = 1
    job_id = _submit(fake)
    trigger = _defer(_sensor(job_id))
    # The sensor's first read answered `queued`; the trigger's next reads fail, then recover.
    fake.fail("GET", f"/v1/jobs/{job_id}", 500, times=STATUS_READ_ATTEMPTS - 1)
    event = _event(trigger)
    assert event["status"] == "success", event
    reads = fake.requests("GET", f"/v1/jobs/{job_id}")
    assert len(reads) >= 1 + STATUS_READ_ATTEMPTS


def test_status_reads_failing_in_a_row_fail_the_wait_with_what_to_do(fake: FakeAirbyte) -> None:
    from orchestration.include.airbyte import STATUS_READ_ATTEMPTS

    fake.queued_polls = 1
    job_id = _submit(fake)
    sensor = _sensor(job_id)
    trigger = _defer(sensor)
    fake.fail("GET", f"/v1/jobs/{job_id}", 500, times=STATUS_READ_ATTEMPTS)
    event = _event(trigger)
    assert event["status"] == "error"
    assert f"{STATUS_READ_ATTEMPTS} times in a row" in event["message"]
    assert "clear the `sync` task" in event["message"]
    with pytest.raises(RuntimeError, match="Could not read the status"):
        sensor.execute_complete(context={}, event=event)


def test_poke_mode_tolerates_failed_reads_until_too_many_in_a_row(fake: FakeAirbyte) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    from orchestration.include.airbyte import STATUS_READ_ATTEMPTS

    job_id = _submit(fake)
    sensor = _sensor(job_id, deferrable=False)
    fake.fail("GET", f"/v1/jobs/{job_id}", 500, times=STATUS_READ_ATTEMPTS)
    for _ in range(STATUS_READ_ATTEMPTS - 1):
        assert sensor.poke(context={}) is False
    with pytest.raises(AirflowException, match=f"{STATUS_READ_ATTEMPTS} times in a row"):
        sensor.poke(context={})


def test_a_job_that_failed_after_landing_rows_fails_the_sensor_in_both_modes(
    fake: FakeAirbyte,
) -> None:
    """A sync can fail halfway, after part of RAW changed: the `sync` task still fails, so the
    dbt tasks after it (all_success) never run over the half-landed RAW."""
    from airflow.providers.common.compat.sdk import AirflowException

    landed: list[bool] = []

    def sync(connection: dict[str, Any], partial: bool = False) -> int:
        landed.append(partial)
        return 7

    fake.sync = sync
    fake.failing_midway.append("Failure in destination: session expired")
    job_id = _submit(fake)
    sensor = _sensor(job_id)
    event = _event(_defer(sensor))
    job = fake.jobs[job_id]
    assert landed == [True] and job.rows_synced == 7  # the failure came after rows landed
    assert job.answered[-1] == "failed" and job.error == "Failure in destination: session expired"
    assert event["status"] == "error", event
    with pytest.raises(RuntimeError, match=f"Airbyte job {job_id} ended failed"):
        sensor.execute_complete(context={}, event=event)
    with pytest.raises(AirflowException, match=f"Airbyte job {job_id} ended failed"):
        _sensor(job_id, deferrable=False).poke(context={})
