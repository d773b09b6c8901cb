"""Where dbt lives on MWAA: in a virtualenv of its own, which Cosmos runs in a subprocess."""

from __future__ import annotations

import pytest

from infra.mwaa.bundle import DBT_EXECUTABLE_ENV
from orchestration.include import dbt


def test_cosmos_runs_the_dbt_executable_it_is_pointed_at(monkeypatch: pytest.MonkeyPatch) -> None:
    # The startup script exports the variable the DAG reads.
    assert DBT_EXECUTABLE_ENV == dbt.DBT_EXECUTABLE_ENV
    monkeypatch.delenv(DBT_EXECUTABLE_ENV, raising=False)
    assert dbt.execution_config().invocation_mode == dbt.InvocationMode.DBT_RUNNER
    monkeypatch.setenv(DBT_EXECUTABLE_ENV, "/usr/local/airflow/dbt_venv/bin/dbt")
    config = dbt.execution_config()
    assert config.invocation_mode == dbt.InvocationMode.SUBPROCESS
    assert str(config.dbt_executable_path) == "/usr/local/airflow/dbt_venv/bin/dbt"
