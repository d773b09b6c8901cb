"""`make airflow`: the Airflow UI, scheduler and DAG processor on 127.0.0.1, state in `.local/airflow`."""

from __future__ import annotations

import os
import shutil
import socket
import sys

from orchestration.include import runner
from orchestration.include.settings import (
    EXECUTION_MODE_ENV,
    LOCAL_WATCHER_TASKS,
    Settings,
    SettingsError,
    execution_mode,
)

PORT_ENV = "AIRFLOW_PORT"
DEFAULT_PORT = 8080
EXECUTOR = "orchestration.include.executor.PreloadingLocalExecutor"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def airflow_settings(port: int, execution_mode: str) -> dict[str, str]:
    """The settings `make airflow` runs Airflow with, for the API server on `port`."""
    base_url = f"http://127.0.0.1:{port}"
    return {
        # The LocalExecutor, with dbt imported once in the scheduler so each task process
        # inherits it instead of importing it again. DuckDB takes one writer at a time: in local
        # mode every dbt task writes, so one task at a time; in watcher mode only the build
        # writes, and the model tasks beside it read its progress.
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__CORE__PARALLELISM": str(
            LOCAL_WATCHER_TASKS if execution_mode == "watcher" else 1
        ),
        EXECUTION_MODE_ENV: execution_mode,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        # Task processes report to the execution API at this address; left unset, Airflow uses
        # localhost:8080 whatever the port, and every task dies before its code runs.
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
    }


def main() -> int:
    raw_port = os.environ.get(PORT_ENV) or str(DEFAULT_PORT)
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        print(f"{PORT_ENV}={raw_port!r} is not a port number; use e.g. {PORT_ENV}=8089.")
        return 2
    port = int(raw_port)
    if not _port_free(port):
        print(
            f"Port {port} on 127.0.0.1 is in use by another program, so Airflow was not started. "
            f"Run it on another port: `make airflow AIRFLOW_PORT={port + 9}`."
        )
        return 1
    # Under the scheduler, one `dbt build` watched by a task per model (`watcher`) costs a
    # fraction of one dbt call per task; MDP_DBT_EXECUTION_MODE=local chooses the latter.
    try:
        mode = execution_mode(default="watcher")
    except SettingsError as error:
        print(f"{error}. Airflow was not started.")
        return 2
    home = runner.configure(None, **airflow_settings(port, mode))
    # Deferred: `dbt` imports Cosmos and so Airflow, which must see `runner.configure()` first.
    from orchestration.include import dbt

    manifest = dbt.build_manifest(Settings.from_env())
    print(f"dbt manifest: {manifest}")
    print(f"Airflow home: {home}; UI on http://127.0.0.1:{port}")
    print(
        f"The admin password is written to {home / 'simple_auth_manager_passwords.json.generated'}"
    )
    # `airflow standalone` starts its scheduler, API server and processors as `airflow …` from
    # PATH: put this environment's bin/ first, so they are this Airflow even without `uv run`.
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    airflow = shutil.which("airflow") or os.path.join(bin_dir, "airflow")
    os.execv(airflow, [airflow, "standalone"])
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
