"""The DAG's alerts: one interface, a local notifier (console and alerts log), SNS on the cloud target, and the deadline."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestration.include import alerts
from orchestration.include.settings import Settings, SettingsError
from tests.orchestration.conftest import load_dag


class _TaskInstance:
    """What a failure callback reads from `context["ti"]`."""

    dag_id = "mdp_daily"
    run_id = "scheduled__2026-03-10T00:00:00+00:00"
    log_url = "http://127.0.0.1:8080/dags/mdp_daily/runs/scheduled/tasks/x"

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id


def _failure(task_id: str, error: str) -> dict[str, Any]:
    return {"ti": _TaskInstance(task_id), "exception": RuntimeError(error)}


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("MDP_TARGET", raising=False)
    monkeypatch.setenv("MDP_HOME", str(tmp_path))
    return tmp_path / "alerts.log"


def _logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_local_notifier_writes_the_console_and_one_json_line_per_alert(tmp_path: Path) -> None:
    console = io.StringIO()
    notifier = alerts.LocalNotifier(tmp_path / "alerts.log", console)
    alert = alerts.Alert("task_failed", "mdp_daily", "r1", "Task sync failed in mdp_daily")
    notifier.send(alert, {})
    notifier.send(alert, {})
    assert [a["summary"] for a in _logged(tmp_path / "alerts.log")] == [alert.summary] * 2
    assert console.getvalue().count("ALERT task_failed: Task sync failed in mdp_daily") == 2
    assert "clear the task" in console.getvalue()


def test_a_task_failure_names_the_dbt_node_and_the_first_line_of_its_error(local: Path) -> None:
    alerts.on_task_failure(
        _failure(
            "transform.fct_payments_model_build",
            "dbt invocation completed with errors: fct_payments: Database Error in model "
            "fct_payments\n  column x does not exist",
        )
    )
    (alert,) = _logged(local)
    assert alert["kind"] == "task_failed"
    assert alert["dbt_node"] == "fct_payments"
    assert alert["error"] == "fct_payments: Database Error in model fct_payments"
    assert alert["link"] == _TaskInstance.log_url


def test_a_task_outside_dbt_has_no_node(local: Path) -> None:
    alerts.on_task_failure(_failure("sync", "psycopg.OperationalError: connection refused\nmore"))
    (alert,) = _logged(local)
    assert (alert["dbt_node"], alert["error"]) == (
        None,
        "psycopg.OperationalError: connection refused",
    )
    assert alert["summary"] == "Task sync failed in mdp_daily"


def test_the_freshness_task_failing_is_one_freshness_error_naming_the_sources(local: Path) -> None:
    alerts.on_task_failure(
        _failure(
            "source_freshness", "dbt invocation completed with errors: users: None\npayments: None"
        )
    )
    (alert,) = _logged(local)
    assert alert["kind"] == "freshness_error"
    assert alert["sources"] == ["users", "payments"]


def test_a_freshness_check_without_warnings_raises_nothing(local: Path) -> None:
    alerts.on_freshness_warning({"ti": _TaskInstance("source_freshness"), "test_names": []})
    assert not local.exists()


def test_a_missed_deadline_is_one_alert_with_the_runs_link(
    local: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.internal:8080")
    # The context Airflow's scheduler gives a deadline callback: the run as the REST API shows it.
    alerts.on_deadline_missed(
        context={
            "dag_run": {
                "dag_id": "mdp_daily",
                "dag_run_id": "scheduled__2026-03-10T00:00:00+00:00",
                "state": "running",
            },
            "deadline": {"id": "d1", "deadline_time": "2026-03-10T02:00:00+00:00"},
        }
    )
    (alert,) = _logged(local)
    assert alert["kind"] == "deadline_missed"
    assert "2026-03-10T02:00:00+00:00" in alert["summary"] and "running" in alert["summary"]
    assert alert["link"] == (
        "http://airflow.internal:8080/dags/mdp_daily/runs/scheduled__2026-03-10T00%3A00%3A00%2B00%3A00"
    )


def test_the_cloud_notifier_publishes_to_the_stacks_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_TARGET", "cloud")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        topic = sns.create_topic(Name="mdp-dev-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        # The stack writes the topic's ARN as an Airflow variable; the host reads it from there.
        monkeypatch.setenv(f"AIRFLOW_VAR_{alerts.ALERTS_TOPIC_VARIABLE.upper()}", topic)
        assert isinstance(alerts.notifier_for("cloud"), alerts.SnsAlertNotifier)
        alerts.on_task_failure(_failure("transform.dim_users_model_build", "boom"))
        (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert body["Subject"] == "[mdp] dbt node dim_users failed in mdp_daily"
    assert "dbt node: dim_users" in body["Message"] and "Error: boom" in body["Message"]
    assert body["MessageAttributes"]["kind"]["Value"] == "task_failed"


def test_without_a_topic_the_cloud_notifier_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(f"AIRFLOW_VAR_{alerts.ALERTS_TOPIC_VARIABLE.upper()}", raising=False)
    monkeypatch.setattr(alerts.SnsAlertNotifier, "topic_arn", lambda self: None)
    alerts.SnsAlertNotifier().send(alerts.Alert("task_failed", "d", "r", "Task x failed"), {})
    assert "no alert topic" in caplog.text and "alerts.emails" in caplog.text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("3h", timedelta(hours=3)),
        ("600", timedelta(minutes=10)),
    ],
)
def test_the_deadline_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv("MDP_DAG_DEADLINE", raw)
    assert Settings.from_env().deadline == expected


@pytest.mark.parametrize("raw", ["2 hours", "0h", "-5m", "h"])
def test_a_bad_deadline_names_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("MDP_DAG_DEADLINE", raw)
    with pytest.raises(SettingsError, match=r"MDP_DAG_DEADLINE=.*set e\.g\. MDP_DAG_DEADLINE=2h"):
        Settings.from_env()


def test_the_dag_alerts_on_every_tasks_final_failure_and_declares_its_deadline(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from airflow.sdk.definitions.deadline import DeadlineReference

    dag: Any = load_dag(monkeypatch, dbt_project, MDP_DAG_DEADLINE="90m")
    for task in dag.tasks:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert callbacks.count(alerts.on_task_failure) == 1, task.task_id
    assert dag.get_task("source_freshness").on_warning_callback is alerts.on_freshness_warning
    (deadline,) = dag.deadline
    assert deadline.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert deadline.interval == timedelta(minutes=90)
    assert deadline.callback.path == "orchestration.include.alerts.on_deadline_missed"
    # The scheduler reads the serialized DAG: the deadline and its callback survive the trip.
    from airflow.serialization.serialized_objects import DagSerialization

    scheduled = json.dumps(DagSerialization.serialize_dag(dag)["deadline"])
    assert "orchestration.include.alerts.on_deadline_missed" in scheduled
    assert "DagRunLogicalDateDeadline" in scheduled and "5400" in scheduled

    # Only triggered, a run has no scheduled time: its deadline counts from when it was queued.
    (triggered,) = load_dag(monkeypatch, dbt_project, MDP_DAG_SCHEDULE="").deadline
    assert triggered.reference == DeadlineReference.DAGRUN_QUEUED_AT
    # Airflow's own deadline alerts here: no watchdog task.
    assert alerts.WATCHDOG_TASK_ID not in dag.task_ids


# The watchdog: Airflow's deadline where Airflow has none (MWAA's 3.0), one look at a time.
_DUE = datetime(2026, 3, 10, 2, tzinfo=UTC)
_RUN_ID = "scheduled__2026-03-10T00:00:00+00:00"


class _WatchdogTaskInstance:
    """What the watchdog reads from `context["ti"]`: the task states of its run, as Airflow 3.0 gives them."""

    task_id = alerts.WATCHDOG_TASK_ID

    def __init__(self, states: dict[str, str | None]) -> None:
        self.states = {**states, alerts.WATCHDOG_TASK_ID: "running"}
        self.asked: list[dict[str, Any]] = []

    def get_task_states(self, **query: Any) -> dict[str, dict[str, str | None]]:
        self.asked.append(query)
        return {_RUN_ID: self.states}


def _watched(states: dict[str, str | None], logical_date: datetime | None = _DUE) -> dict[str, Any]:
    run = SimpleNamespace(
        dag_id="mdp_daily",
        run_id=_RUN_ID,
        logical_date=logical_date and logical_date - timedelta(hours=2),
        start_date=datetime(2026, 3, 10, 1, tzinfo=UTC),
        state="running",
    )
    return {"ti": _WatchdogTaskInstance(states), "dag_run": run}


_UNFINISHED = {
    "sync": "success",
    "transform.fct_payments_model_build": "up_for_retry",
    "publish": None,
}


def test_the_watchdog_waits_before_the_deadline(local: Path) -> None:
    context = _watched(_UNFINISHED)
    assert alerts.check_deadline(context, timedelta(hours=2), "logical_date", _DUE) is False
    assert context["ti"].asked == [{"dag_id": "mdp_daily", "run_ids": [_RUN_ID]}]
    assert not local.exists()


def test_the_watchdog_is_done_without_an_alert_once_every_other_task_finished(local: Path) -> None:
    finished = {
        "sync": "success",
        "source_freshness": "failed",
        "transform.x_run": "upstream_failed",
    }
    late = _DUE + timedelta(hours=1)
    context = _watched(finished | {"publish": "skipped"})
    assert alerts.check_deadline(context, timedelta(hours=2), "logical_date", late) is True
    assert not local.exists()


def test_the_watchdog_raises_one_deadline_alert_for_a_late_run_and_is_done(
    local: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.internal:8080")
    late = _DUE + timedelta(seconds=1)
    assert alerts.check_deadline(_watched(_UNFINISHED), timedelta(hours=2), "logical_date", late)
    (alert,) = _logged(local)
    assert alert["kind"] == "deadline_missed"
    # The message of Airflow's own deadline callback, with the tasks still unfinished.
    assert alert["summary"] == (
        f"Run {_RUN_ID} of mdp_daily missed its deadline (2026-03-10T02:00:00+00:00); it is running"
    )
    assert alert["error"] == (
        "run state running at its deadline 2026-03-10T02:00:00+00:00; "
        "unfinished: publish, transform.fct_payments_model_build"
    )
    assert alert["link"] == alerts.run_link("mdp_daily", _RUN_ID)


def test_an_unscheduled_runs_deadline_counts_from_its_start(local: Path) -> None:
    # Started at 01:00: due at 03:00, whatever its logical date says.
    started = datetime(2026, 3, 10, 1, tzinfo=UTC)
    for logical_date in (_DUE, None):
        context = _watched(_UNFINISHED, logical_date)
        assert not alerts.check_deadline(context, timedelta(hours=2), "start_date", _DUE)
    # A scheduled DAG's run triggered without a logical date counts from its start too.
    at_three = started + timedelta(hours=2)
    assert not alerts.check_deadline(
        _watched(_UNFINISHED, None), timedelta(hours=2), "logical_date", at_three
    )
    assert not local.exists()
    assert alerts.check_deadline(
        _watched(_UNFINISHED, None),
        timedelta(hours=2),
        "logical_date",
        at_three + timedelta(seconds=1),
    )
    (alert,) = _logged(local)
    assert "(2026-03-10T03:00:00+00:00)" in alert["summary"]


def test_without_airflow_deadlines_the_dag_has_a_watchdog_that_never_changes_the_run(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path, local: Path
) -> None:
    monkeypatch.setattr(alerts, "HAS_DEADLINES", False)
    dag: Any = load_dag(monkeypatch, dbt_project, MDP_DAG_DEADLINE="90m")
    assert dag.deadline is None
    watchdog = dag.get_task(alerts.WATCHDOG_TASK_ID)
    assert isinstance(watchdog, alerts.DeadlineWatchdog)
    assert (watchdog.mode, watchdog.poke_interval) == ("reschedule", 180)
    assert (watchdog.deadline, watchdog.reference) == (timedelta(minutes=90), "logical_date")
    # Nothing waits for it and it waits for nothing; a failing look or a timeout never fails it.
    assert not watchdog.upstream_task_ids and not watchdog.downstream_task_ids
    assert watchdog.trigger_rule == "always"
    assert watchdog.soft_fail and watchdog.silent_fail
    assert watchdog.timeout == dag.dagrun_timeout.total_seconds()
    # Its look is the function above.
    assert watchdog.poke(_watched({"publish": "success"})) is True
    unscheduled = load_dag(monkeypatch, dbt_project, MDP_DAG_SCHEDULE="")
    assert unscheduled.get_task(alerts.WATCHDOG_TASK_ID).reference == "start_date"


@pytest.mark.parametrize(
    ("task_id", "node"),
    [
        ("transform.fct_payments_model_build", "fct_payments"),
        ("transform.fct_payments.run", "fct_payments"),
        ("transform.fct_payments.test", "fct_payments"),
        ("transform.dbt_producer_watcher", None),
        ("transform.dbt_producer_watcher_done", None),
        ("sync", None),
    ],
)
def test_the_dbt_node_of_a_task_in_either_execution_mode(task_id: str, node: str | None) -> None:
    assert alerts.dbt_node(task_id) == node
