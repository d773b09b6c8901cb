"""`make bench-dag`: one simulated day under Airflow's real scheduler vs the same day run directly.

Both sides start from the same state: a source with history and a first day already synced,
built and exported, then the next day generated into the source. The direct side runs a plain
`mdp sync` and one `dbt build`, each as its own process, as a user would. The scheduler side
restores the same warehouse, starts `make airflow`'s Airflow (scheduler with LocalExecutor, API
server, DAG processor; dbt in watcher mode unless `--execution-mode local`) on a free port, triggers the daily DAG for that day and times the run
from its start to its end as Airflow records them. Figures go to `.local/bench/dag.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core import paths
from core.bench import copy_to_disk, write_figures
from orchestration.include.settings import EXECUTION_MODE_ENV, EXECUTION_MODES

DAG_ID = "mdp_daily"
PRODUCER_TASK = "transform.dbt_producer_watcher"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str], what: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds


def prepare(env: dict[str, str], first_day: datetime, day: datetime) -> None:
    """History and a first day synced, built and exported; then the measured day generated in
    the source."""
    script = f"""
from datetime import datetime
from core import localpg
from exports import export_marts
from ingestion.sync import run_sync
from orchestration.include import local_steps
from orchestration.include.settings import Settings
from transform import runner

settings = Settings.from_env()
first, day = datetime.fromisoformat({first_day.isoformat()!r}), datetime.fromisoformat({day.isoformat()!r})
local_steps.seed_history(first, settings)
local_steps.generate_day(first, settings)
run_sync(conninfo=localpg.source_dsn() or None)
outcome = runner.run_dbt(["build"], target="local")
assert outcome.success, outcome.statuses
# The first day's exports, as its publish step leaves them: the measured day's publish
# finds them in place, as every daily run after the first does.
export_marts()
print(local_steps.generate_day(day, settings))
"""
    _run([sys.executable, "-c", script], env, "preparing the benchmark's source and warehouse")


def direct(env: dict[str, str]) -> dict[str, float]:
    """`mdp sync`, then one `dbt build` of the whole project, each as its own process."""
    sync = _run([str(BIN / "mdp"), "sync"], env, "mdp sync")
    project = str(paths.REPO_ROOT / "transform")
    build = _run(
        [
            str(BIN / "dbt"),
            "build",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target",
            "local",
        ],
        env,
        "dbt build",
    )
    return {"sync_s": sync, "dbt_build_s": build}


@contextlib.contextmanager
def airflow(env: dict[str, str], home: Path) -> Iterator[tuple[str, Path]]:
    """`make airflow` (orchestration.include.standalone) on a free port, stopped on exit."""
    port = _free_port()
    log = home / "standalone.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.include.standalone"],
            env={**env, "AIRFLOW_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # The scheduler's task processes can outlive `airflow standalone`.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _wait(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:]
    sys.exit(f"{what}: not within {timeout:.0f} s. Airflow's output ends with:\n{tail}")


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def scheduled(env: dict[str, str], home: Path, day: datetime, timeout: float) -> dict[str, Any]:
    """The daily DAG triggered for `day` under the real scheduler; its run's duration and tasks."""
    # Deferred: only this side of the benchmark talks to Airflow's API.
    import httpx

    with airflow(env, home) as (url, log):
        _wait(
            "Airflow's API server",
            lambda: httpx.get(f"{url}/api/v2/monitor/health", timeout=30).is_success,
            timeout,
            log,
        )
        passwords = home / "simple_auth_manager_passwords.json.generated"
        _wait("the admin password file", passwords.exists, timeout, log)
        user, password = next(iter(json.loads(passwords.read_text()).items()))
        token = httpx.post(
            f"{url}/auth/token", json={"username": user, "password": password}, timeout=60
        )
        token.raise_for_status()
        api = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )
        _wait("the DAG parsed", lambda: api.get(f"/dags/{DAG_ID}").is_success, timeout, log)
        triggered_at = time.perf_counter()
        response = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": day.isoformat()})
        if not response.is_success:
            sys.exit(f"triggering the DAG failed: {response.text}")
        run_id = response.json()["dag_run_id"]

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()
            return run if run["state"] in ("success", "failed") else None

        run = _wait("the triggered run", finished, timeout, log)
        wall = time.perf_counter() - triggered_at
        instances = api.get(
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 200}
        ).json()["task_instances"]
    tasks = {
        t["task_id"]: round(_seconds(t.get("start_date"), t.get("end_date")), 2) for t in instances
    }
    if run["state"] != "success":
        failed = [t["task_id"] for t in instances if t["state"] != "success"]
        sys.exit(f"the scheduled run {run['state']}; not succeeded: {failed}; logs in {home}")
    return {
        "run_s": _seconds(run.get("start_date"), run.get("end_date")),
        "trigger_to_end_s": wall,
        "tasks": tasks,
    }


def _say(line: str) -> None:
    """A progress line, shown as it happens even when the output goes to a file."""
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles-per-day", type=int, help="generator cycles per simulated day")
    parser.add_argument("--rows-per-cycle", type=int, help="rows each generator cycle writes")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait per step")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's folders")
    parser.add_argument(
        "--execution-mode",
        choices=EXECUTION_MODES,
        default="watcher",
        help="how Cosmos runs dbt under the scheduler (default: make airflow's, watcher)",
    )
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mdp-bench-dag-"))
    home = work / "mdp"
    airflow_home = work / "airflow"
    airflow_home.mkdir(parents=True)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    env = {
        **os.environ,
        "MDP_HOME": str(home),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # Runs only when triggered: no scheduled run competes with the measured one.
        "MDP_DAG_SCHEDULE": "",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    for name, value in (
        ("MDP_CYCLES_PER_DAY", options.cycles_per_day),
        ("MDP_ROWS_PER_CYCLE", options.rows_per_cycle),
    ):
        if value:
            env[name] = str(value)
    env.pop("MDP_TARGET", None)
    env[EXECUTION_MODE_ENV] = options.execution_mode
    try:
        started = time.perf_counter()
        _say("preparing: a source with history, a first day synced and built (several minutes)")
        prepare(env, day - timedelta(days=1), day)
        _say(f"source and warehouse prepared in {time.perf_counter() - started:.0f}s")
        warehouse = home / "warehouse"
        before = work / "warehouse-before"
        copy_to_disk(warehouse, before)
        _say("direct: mdp sync, then one dbt build")
        baseline = direct(env)
        shutil.rmtree(warehouse)
        copy_to_disk(before, warehouse)
        _say("scheduler: make airflow's Airflow on a free port, one triggered run of the day")
        run = scheduled(env, airflow_home, day, options.timeout)
    finally:
        # The source PostgreSQL the runs started under the benchmark's MDP_HOME.
        subprocess.run(
            [sys.executable, "-c", "from core import localpg; localpg.stop()"],
            env=env,
            capture_output=True,
            check=False,
        )
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    direct_s = baseline["sync_s"] + baseline["dbt_build_s"]
    ratio = run["run_s"] / direct_s
    dbt_tasks = {k: v for k, v in run["tasks"].items() if k.startswith("transform.")}
    load = os.getloadavg()
    print(f"direct: mdp sync {baseline['sync_s']:.1f}s + dbt build {baseline['dbt_build_s']:.1f}s")
    print(
        f"scheduler ({options.execution_mode} mode): run {run['run_s']:.1f}s ({len(run['tasks'])} tasks, "
        f"{len(dbt_tasks)} dbt tasks taking {sum(dbt_tasks.values()):.1f}s), "
        f"trigger to end {run['trigger_to_end_s']:.1f}s"
    )
    build_s = run["tasks"].get(PRODUCER_TASK)
    if build_s is not None:
        print(
            f"  the one dbt build took {build_s:.1f}s under the scheduler, "
            f"{build_s / baseline['dbt_build_s']:.2f}x the direct one"
        )
    for task, seconds in sorted(run["tasks"].items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {seconds:6.1f}s  {task}")
    print(f"scheduler / direct: {ratio:.2f}  (goal <= 2.0)")
    print(f"load average now: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    summary = {
        "execution_mode": options.execution_mode,
        "direct_s": round(direct_s, 2),
        "direct": {k: round(v, 2) for k, v in baseline.items()},
        "scheduler_run_s": round(run["run_s"], 2),
        "scheduler_trigger_to_end_s": round(run["trigger_to_end_s"], 2),
        "tasks": len(run["tasks"]),
        "dbt_tasks": len(dbt_tasks),
        "dbt_tasks_s": round(sum(dbt_tasks.values()), 2),
        # Watcher mode: the producer task's one `dbt build`, beside the direct one.
        "scheduler_build_s": build_s,
        "task_seconds": run["tasks"],
        "scheduler_vs_direct": round(ratio, 3),
        "load_average": [round(x, 2) for x in load],
    }
    print(f"Figures: {write_figures('dag', summary)}")


if __name__ == "__main__":
    main()
