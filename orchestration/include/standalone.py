"""`make airflow`: the Airflow UI, scheduler and DAG processor on 127.0.0.1, state in `.local/airflow`."""

from __future__ import annotations

import os
import shutil
import socket
import sys

from orchestration.include import runner

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


def airflow_settings(port: int) -> dict[str, str]:
    """The settings `make airflow` runs Airflow with, for the API server on `port`."""
    base_url = f"http://127.0.0.1:{port}"
    return {
        # One process per task locally; DuckDB takes one writer at a time, so one task at a time.
        # The LocalExecutor, with dbt imported once in the scheduler so each task process
        # inherits it instead of importing it again.
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__CORE__PARALLELISM": "1",
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
    home = runner.configure(None, **airflow_settings(port))
    # Deferred: `dbt` imports Cosmos and so Airflow, which must see `runner.configure()` first.
    from orchestration.include import dbt
    from orchestration.include.settings import Settings

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
