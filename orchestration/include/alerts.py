"""The DAG's alerts behind one interface: the stack's SNS topic on the cloud target, the console and `.local/alerts.log` locally."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO
from urllib.parse import quote

from airflow.configuration import conf
from airflow.sdk import BaseSensorOperator, Variable

from core import paths
from core.target import Target, current_target
from orchestration.include.settings import ALERTS_TOPIC_VARIABLE, Settings

try:
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    # DAG deadlines came with Airflow 3.1; MWAA's newest, 3.0.6, has none (docs/mwaa.md).
    HAS_DEADLINES = True
except ImportError:
    HAS_DEADLINES = False

log = logging.getLogger(__name__)

FRESHNESS_TASK_ID = "source_freshness"
TRANSFORM_GROUP = "transform"
# Cosmos names a dbt task `<group>.<node>_<what it runs>`.
_DBT_TASK_SUFFIXES = ("_model_build", "_build", "_run", "_test", "_seed", "_snapshot")
# Watcher mode: `<group>.<node>.run` / `.test`, and the build's `<group>.dbt_producer_watcher`
# (with its `_done` gate).
_WATCHER_TASKS = ("run", "test")
_WATCHER_PRODUCER = "dbt_producer_watcher"
# Cosmos wraps dbt's own message in this prefix; the alert's first line is dbt's.
_COSMOS_PREFIXES = (
    "dbt invocation completed with errors: ",
    "dbt invocation did not complete with unhandled error: ",
)
# SNS rejects a subject over 100 characters.
_SUBJECT_LIMIT = 100
# A late run's alert names this many of its unfinished tasks.
_UNFINISHED_SHOWN = 5

WATCHDOG_TASK_ID = "deadline_watchdog"
# How often the watchdog looks at the run; between looks it holds no worker slot.
WATCHDOG_POKE_INTERVAL = timedelta(minutes=3)
# A task in any other state (none, scheduled, queued, running, up_for_retry, ...) may still run.
FINISHED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})

AlertKind = Literal["task_failed", "freshness_warning", "freshness_error", "deadline_missed"]

_WHAT_TO_DO: Mapping[AlertKind, str] = {
    "task_failed": (
        "Every task downstream of it is skipped and publishing does not run; tables built "
        "before it keep their last good build. Read the task's log at the link, fix the model, "
        "its data or the service it reached, then clear the task to resume the run from there "
        "(locally: `mdp backfill --from DAY --to DAY` re-runs the day)."
    ),
    "freshness_warning": (
        "The run goes on, but the named sources have not been loaded for longer than their "
        "warn_after. Check the last syncs (Airbyte's job history; locally the `sync` task) "
        "before the lag reaches error_after and stops the run."
    ),
    "freshness_error": (
        "The run stopped before dbt: the named sources are older than their error_after, so "
        "the marts would be stale. Find why the sync did not load them (Airbyte's job history; "
        "locally the `sync` task), run a sync, then clear `source_freshness` to resume."
    ),
    "deadline_missed": (
        "The day's marts and exports are late: the run is still going, queued or failed. Open "
        "the run at the link: a failed task raised its own alert; a run still queued or running "
        "points at the Airflow host (see 'Replacing the Airflow host' in docs/operations.md)."
    ),
}


@dataclass(frozen=True)
class Alert:
    """One alert: what happened, where, dbt's or Airflow's first error line, and a link."""

    kind: AlertKind
    dag_id: str
    run_id: str
    summary: str
    task_id: str | None = None
    dbt_node: str | None = None
    error: str | None = None
    link: str | None = None
    sources: tuple[str, ...] = ()
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def what_to_do(self) -> str:
        return _WHAT_TO_DO[self.kind]

    @property
    def subject(self) -> str:
        subject = f"[mdp] {self.summary}".replace("\n", " ")
        return subject if len(subject) <= _SUBJECT_LIMIT else subject[: _SUBJECT_LIMIT - 1] + "…"

    def message(self) -> str:
        lines = [self.summary, "", f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        if self.task_id:
            lines.append(f"Task: {self.task_id}")
        if self.dbt_node:
            lines.append(f"dbt node: {self.dbt_node}")
        if self.sources:
            lines.append(f"Sources: {', '.join(self.sources)}")
        if self.error:
            lines.append(f"Error: {self.error}")
        if self.link:
            lines.append(f"Link: {self.link}")
        lines += ["", self.what_to_do]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "what_to_do": self.what_to_do}, sort_keys=True)


class Notifier(Protocol):
    """Where alerts go: the DAG's callbacks call `send` and know nothing of the target."""

    def send(self, alert: Alert, context: Mapping[str, Any]) -> None: ...


class LocalNotifier:
    """The local target: one line on the console (the task log) and one JSON line in the alerts log."""

    def __init__(self, log_file: Path | None = None, console: TextIO | None = None) -> None:
        self.log_file = log_file or paths.alerts_log()
        self.console = console

    def send(self, alert: Alert, context: Mapping[str, Any]) -> None:
        console = self.console or sys.stderr
        print(f"ALERT {alert.kind}: {alert.message()}", file=console, flush=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as f:
            f.write(alert.to_json() + "\n")


class SnsAlertNotifier:
    """The cloud target: the Amazon provider's SNS notifier, publishing to the stack's topic.

    The topic's ARN comes from the Airflow variable the Pulumi program writes; the host's
    instance role signs the request (no AWS connection is stored in Airflow).
    """

    def __init__(self, topic_arn: str | None = None, aws_conn_id: str | None = None) -> None:
        self._topic_arn = topic_arn
        self.aws_conn_id = aws_conn_id

    def topic_arn(self) -> str | None:
        if self._topic_arn:
            return self._topic_arn
        arn = Variable.get(ALERTS_TOPIC_VARIABLE, default=None)
        return str(arn) if arn else None

    def send(self, alert: Alert, context: Mapping[str, Any]) -> None:
        # Deferred: the Amazon provider is only needed on the cloud target, when an alert fires.
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        arn = self.topic_arn()
        if not arn:
            log.error(
                "Alert not sent, the stack has no alert topic (no `mdp:alerts` config, so no "
                "Airflow variable %s). Set `pulumi config set --path 'alerts.emails[0]' you@example.com` "
                "and deploy to receive alerts. The alert: %s",
                ALERTS_TOPIC_VARIABLE,
                alert.message(),
            )
            return
        SnsNotifier(
            aws_conn_id=self.aws_conn_id,
            target_arn=arn,
            subject=alert.subject,
            message=alert.message(),
            message_attributes={"kind": alert.kind},
            # arn:aws:sns:<region>:<account>:<name>
            region_name=arn.split(":")[3],
        ).notify(dict(context))


def notifier_for(target: Target) -> Notifier:
    """The one notifier of `target`: the callbacks below send every alert through it."""
    return LocalNotifier() if target == "local" else SnsAlertNotifier()


def _send(alert: Alert, context: Mapping[str, Any]) -> None:
    # A callback that raises would only be logged by Airflow: say clearly that the alert is lost.
    try:
        notifier_for(current_target()).send(alert, context)
    except Exception:
        log.exception("Sending the alert failed; the alert was: %s", alert.message())


def dbt_node(task_id: str) -> str | None:
    """The dbt node a Cosmos task runs, or None for a task outside the dbt group.

    Local mode names a task `transform.<node>_<what it runs>`; watcher mode names a model's two
    tasks `transform.<node>.run` and `transform.<node>.test`, and its build, which runs every
    node, `transform.dbt_producer_watcher` (None: no one node).
    """
    parts = task_id.split(".")
    if parts[0] != TRANSFORM_GROUP or len(parts) < 2:
        return None
    if len(parts) >= 3 and parts[-1] in _WATCHER_TASKS:
        return parts[-2]
    name = parts[-1]
    if name.startswith(_WATCHER_PRODUCER):
        return None
    for suffix in _DBT_TASK_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def first_line(error: object, node: str | None = None) -> str | None:
    """The error's first line; for a dbt task, the first line of `node`'s own error.

    Cosmos lists one `name: message` line per failed dbt node; a model's unit tests run before
    it and fail with it, so the model's line is not always the first.
    """
    text = str(error or "").strip()
    for prefix in _COSMOS_PREFIXES:
        text = text.removeprefix(prefix)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if node:
        own = [line for line in lines if line.startswith(f"{node}: ")]
        if own:
            return own[0]
    return lines[0] if lines else None


def _stale_sources(error: object) -> tuple[str, ...]:
    """Source names from Cosmos's failure message: one `name: status` line per failing node."""
    text = str(error or "")
    for prefix in _COSMOS_PREFIXES:
        text = text.replace(prefix, "")
    names = [line.split(":", 1)[0].strip() for line in text.splitlines() if ":" in line]
    return tuple(n for n in names if n.isidentifier())


def _run_fields(context: Mapping[str, Any]) -> tuple[str, str]:
    ti = context["ti"]
    return str(ti.dag_id), str(ti.run_id)


def _link(context: Mapping[str, Any]) -> str | None:
    return getattr(context["ti"], "log_url", None)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """A task's final failure (Airflow calls it after the last retry): one alert."""
    ti = context["ti"]
    dag_id, run_id = _run_fields(context)
    error = context.get("exception")
    if ti.task_id == FRESHNESS_TASK_ID:
        sources = _stale_sources(error)
        alert = Alert(
            kind="freshness_error",
            dag_id=dag_id,
            run_id=run_id,
            summary=f"Source freshness error in {dag_id}: {', '.join(sources) or 'see the log'}",
            task_id=ti.task_id,
            error=first_line(error),
            link=_link(context),
            sources=sources,
        )
    else:
        node = dbt_node(ti.task_id)
        alert = Alert(
            kind="task_failed",
            dag_id=dag_id,
            run_id=run_id,
            summary=(
                f"dbt node {node} failed in {dag_id}"
                if node
                else f"Task {ti.task_id} failed in {dag_id}"
            ),
            task_id=ti.task_id,
            dbt_node=node,
            error=first_line(error, node),
            link=_link(context),
        )
    _send(alert, context)


def on_freshness_warning(context: Mapping[str, Any]) -> None:
    """Cosmos's warning callback on the freshness task: sources past warn_after, one alert."""
    sources = tuple(str(n) for n in context.get("test_names") or ())
    if not sources:
        # Cosmos calls it after every freshness check, warnings or not.
        return
    dag_id, run_id = _run_fields(context)
    results = [str(r) for r in context.get("test_results") or ()]
    _send(
        Alert(
            kind="freshness_warning",
            dag_id=dag_id,
            run_id=run_id,
            summary=f"Source freshness warning in {dag_id}: {', '.join(sources)}",
            task_id=FRESHNESS_TASK_ID,
            error=first_line(results[0]) if results else None,
            link=_link(context),
            sources=sources,
        ),
        context,
    )


def on_deadline_missed(context: Mapping[str, Any], **_: Any) -> None:
    """Airflow's deadline callback: the run had not finished by its deadline."""
    run = context.get("dag_run") or {}
    _send(
        deadline_missed_alert(
            dag_id=str(run.get("dag_id", "?")),
            run_id=str(run.get("dag_run_id") or run.get("run_id") or "?"),
            state=str(run.get("state", "unknown")),
            deadline=(context.get("deadline") or {}).get("deadline_time"),
        ),
        context,
    )


def deadline_missed_alert(
    dag_id: str, run_id: str, state: str, deadline: object, unfinished: tuple[str, ...] = ()
) -> Alert:
    """The one `deadline_missed` alert, whether Airflow's deadline or the watchdog raised it."""
    error = f"run state {state} at its deadline {deadline}"
    if unfinished:
        shown = ", ".join(unfinished[:_UNFINISHED_SHOWN])
        more = len(unfinished) - _UNFINISHED_SHOWN
        error += f"; unfinished: {shown}" + (f" and {more} more" if more > 0 else "")
    return Alert(
        kind="deadline_missed",
        dag_id=dag_id,
        run_id=run_id,
        summary=f"Run {run_id} of {dag_id} missed its deadline ({deadline}); it is {state}",
        error=error,
        link=run_link(dag_id, run_id),
    )


def run_link(dag_id: str, run_id: str) -> str:
    base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def deadline_args(settings: Settings) -> dict[str, Any]:
    """The DAG's `deadline` argument: an alert for every run; none where Airflow has no deadlines.

    There (MWAA's Airflow 3.0), `DeadlineWatchdog` below raises the same alert from inside the run.
    """
    if not HAS_DEADLINES:
        return {}
    return {"deadline": deadline_alert(settings)}


def deadline_alert(settings: Settings) -> DeadlineAlert:
    """The DAG's deadline: `settings.deadline` after the scheduled time, calling the callback above.

    A DAG that is only triggered has no scheduled time (its runs may have no logical date): its
    deadline counts from when the run was queued.
    """
    return DeadlineAlert(
        reference=(
            DeadlineReference.DAGRUN_LOGICAL_DATE
            if settings.schedule
            else DeadlineReference.DAGRUN_QUEUED_AT
        ),
        interval=settings.deadline,
        callback=SyncCallback(on_deadline_missed),
        name="mdp_daily_deadline",
    )


WatchdogReference = Literal["logical_date", "start_date"]


def watchdog_reference(settings: Settings) -> WatchdogReference:
    """What the watchdog counts the deadline from: as `deadline_alert`, for a run that has begun.

    A watchdog runs only once its run has started, so an unscheduled run's deadline counts from
    its start (the queue time, which Airflow 3.0 does not give a task, comes a little earlier).
    """
    return "logical_date" if settings.schedule else "start_date"


def check_deadline(
    context: Mapping[str, Any],
    deadline: timedelta,
    reference: WatchdogReference,
    now: datetime | None = None,
) -> bool:
    """One look of the watchdog at its run; True when it has nothing left to watch.

    Done, without an alert, once every other task of the run has finished. Past the deadline
    with tasks still unfinished: one `deadline_missed` alert, and done (the run goes on).
    """
    ti = context["ti"]
    run = context["dag_run"]
    states = ti.get_task_states(dag_id=run.dag_id, run_ids=[run.run_id]).get(run.run_id, {})
    unfinished = tuple(
        sorted(
            task_id
            for task_id, state in states.items()
            if task_id != ti.task_id and _state(state) not in FINISHED_STATES
        )
    )
    if not unfinished:
        return True
    # A run triggered on a scheduled DAG may have no logical date: its start stands in.
    due = (getattr(run, reference, None) or run.start_date) + deadline
    if (now or datetime.now(UTC)) <= due:
        return False
    alert = deadline_missed_alert(
        dag_id=str(run.dag_id),
        run_id=str(run.run_id),
        state=_state(run.state),
        deadline=due.isoformat(),
        unfinished=unfinished,
    )
    _send(alert, context)
    return True


def _state(state: object) -> str:
    """A task's or run's state as Airflow spells it, whether it arrives as an enum or a string."""
    return str(getattr(state, "value", state)).lower()


class DeadlineWatchdog(BaseSensorOperator):
    """Airflow's DAG deadline where Airflow has none (MWAA's 3.0): a sensor in the run itself.

    It looks every few minutes, freeing its worker slot in between (mode `reschedule`), and
    finishes as soon as the rest of the run has; a late run gets one `deadline_missed` alert.
    Its outcome never changes the run's: it has no upstream or downstream task, a failing look
    is logged and retried at the next one (`silent_fail`), and a timeout skips it (`soft_fail`).
    """

    def __init__(
        self,
        *,
        deadline: timedelta,
        reference: WatchdogReference,
        timeout: timedelta,
        poke_interval: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            mode="reschedule",
            poke_interval=min(WATCHDOG_POKE_INTERVAL, deadline)
            if poke_interval is None
            else poke_interval,
            timeout=timeout,
            soft_fail=True,
            silent_fail=True,
            trigger_rule="always",
            **kwargs,
        )
        self.deadline = deadline
        self.reference = reference

    def poke(self, context: Any) -> bool:
        return check_deadline(context, self.deadline, self.reference)


def deadline_watchdog(settings: Settings, timeout: timedelta) -> DeadlineWatchdog | None:
    """The watchdog task where Airflow has no DAG deadlines, else None (the DAG's own deadline alerts)."""
    if HAS_DEADLINES:
        return None
    return DeadlineWatchdog(
        task_id=WATCHDOG_TASK_ID,
        deadline=settings.deadline,
        reference=watchdog_reference(settings),
        timeout=timeout,
    )
