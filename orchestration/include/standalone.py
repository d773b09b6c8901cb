"""`make airflow`: the Airflow UI, scheduler and DAG processor on 127.0.0.1, state under `.local/airflow`."""

from __future__ import annotations

import os
import shutil
import sys

from orchestration.include import runner


def main() -> None:
    home = runner.configure(
        # One process per task locally; DuckDB takes one writer at a time, so one task at a time.
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="1",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=os.environ.get("AIRFLOW_PORT", "8080"),
    )
    # Deferred: `dbt` imports Cosmos and so Airflow, which must see `runner.configure()` first.
    from orchestration.include import dbt
    from orchestration.include.settings import Settings

    manifest = dbt.build_manifest(Settings.from_env())
    print(f"dbt manifest: {manifest}")
    print(f"Airflow home: {home}; UI on http://127.0.0.1:{os.environ['AIRFLOW__API__PORT']}")
    print(
        f"The admin password is written to {home / 'simple_auth_manager_passwords.json.generated'}"
    )
    airflow = shutil.which("airflow") or os.path.join(os.path.dirname(sys.executable), "airflow")
    os.execv(airflow, [airflow, "standalone"])


if __name__ == "__main__":
    main()
