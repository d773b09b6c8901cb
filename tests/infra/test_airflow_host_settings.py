"""The Airflow host's own Airflow settings, as Airflow itself reads them from the host's env file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from infra.cloud_init import DAG_REPARSE_SECONDS, AirflowBoot, render_airflow
from rehearsal.sandbox import read_env_file

BOOT = AirflowBoot("dev", "us-east-1", "bucket", "/mdp/dev/artifact", "mdp/dev/airflow/connections",
                   "mdp/dev/airflow/variables", "9.0.0")  # fmt: skip

# Run with the host's Airflow environment: what Airflow's configuration resolves.
READ_CONFIG = """
import json
from airflow.configuration import conf
print(json.dumps({
    "reparse": conf.getint("dag_processor", "min_file_process_interval"),
    "sort_mode": conf.get("dag_processor", "file_parsing_sort_mode"),
}))
"""


def _airflow_env() -> dict[str, str]:
    files = {f["path"]: f["content"] for f in yaml.safe_load(render_airflow(BOOT))["write_files"]}
    return read_env_file(files["/etc/mdp/airflow.env"])


def test_the_hosts_airflow_re_reads_an_unchanged_dag_file_every_ten_minutes(
    tmp_path: Path,
) -> None:
    host = _airflow_env()
    assert host["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] == str(DAG_REPARSE_SECONDS)
    # Only the host's file decides: no AIRFLOW_* of the machine the test runs on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(host, AIRFLOW_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", READ_CONFIG], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, f"Airflow could not read the host's settings:\n{out.stderr}"
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # Airflow's default is 30 s: a misspelt key would leave it there.
    assert seen["reparse"] == DAG_REPARSE_SECONDS >= 600
    # A changed file is still re-read at once: the processor orders files by modification time
    # and re-reads one modified since its last parse, whatever the interval.
    assert seen["sort_mode"] == "modified_time"
