"""The project's DuckDB table and view materializations: replaced in one transaction.

A small dbt project of its own, with the project's `macros/materializations.sql` and
`macros/generate_schema_name.sql` (the schema listing), so that each case can change one
model and see what the warehouse holds after each run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core import paths
from transform import runner as transform

PROJECT = """
name: materializations
version: "1.0.0"
config-version: 2
profile: materializations
model-paths: ["models"]
macro-paths: ["macros"]
"""

PROFILES = """
materializations:
  target: local
  outputs:
    local:
      type: duckdb
      path: "{path}"
      schema: work
      threads: 1
"""

MODELS = {
    # `value` is a column expression; a missing column makes the view fail to bind.
    "v.sql": "{{ config(materialized='view') }}\nselect {{ var('v_value', '1') }} as value",
    "t.sql": "{{ config(materialized='table') }}\nselect {{ var('t_value', 'value') }} as value "
    "from {{ ref('v') }}",
    # Changes kind with `m_kind`: the old relation of the other kind must go.
    "m.sql": "{{ config(materialized=var('m_kind', 'table')) }}\nselect 7 as seven",
}

# `t` is a contract model: the contract must still be enforced.
SCHEMA = """
models:
  - name: t
    config:
      contract:
        enforced: true
    columns:
      - name: value
        data_type: integer
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MDP_HOME", str(tmp_path / "home"))
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    for macros in ("materializations.sql", "generate_schema_name.sql"):
        shutil.copy(paths.transform_dir() / "macros" / macros, root / "macros")
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILES.format(path=tmp_path / "warehouse.duckdb"))
    for name, sql in MODELS.items():
        (root / "models" / name).write_text(sql)
    (root / "models" / "schema.yml").write_text(SCHEMA)
    return root


def run(project: Path, **variables: str) -> transform.DbtOutcome:
    return transform.run_dbt(["run", "--vars", json.dumps(variables)], project_dir=project)


def relations(project: Path) -> dict[str, tuple[str, list[Any]]]:
    """Every relation in the warehouse: its kind and its rows."""
    con = duckdb.connect(str(project.parent / "warehouse.duckdb"), read_only=True)
    try:
        found: dict[str, tuple[str, list[Any]]] = {}
        for name, kind in con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'work' order by all"
        ).fetchall():
            try:
                rows = con.execute(f'select * from work."{name}"').fetchall()
            except duckdb.Error as error:
                rows = [f"unreadable: {error}"]
            found[name] = (kind, rows)
        return found
    finally:
        con.close()


def dbt_log() -> str:
    return (paths.local_home() / "logs" / "dbt" / "dbt.log").read_text()


def test_tables_and_views_are_replaced_without_leftovers(project: Path) -> None:
    assert run(project).success
    # The first run creates the schema; the second finds it (dbt names the database quoted).
    assert dbt_log().count('Creating schema "database: "') == 1
    assert run(project, v_value="2").success
    assert dbt_log().count('Creating schema "database: "') == 1
    # Built in place: dbt's own materializations create `__dbt_tmp` relations and rename the old
    # ones to `__dbt_backup`, one statement each.
    log = dbt_log()
    assert "create view" in log and "create  table" in log
    assert "__dbt_tmp" not in log and "__dbt_backup" not in log
    # Nothing left beside them, and each holds the second run's rows.
    assert relations(project) == {
        "m": ("BASE TABLE", [(7,)]),
        "t": ("BASE TABLE", [(2,)]),
        "v": ("VIEW", [(2,)]),
    }


def test_a_model_that_changes_kind_replaces_the_old_relation(project: Path) -> None:
    assert run(project).success
    assert relations(project)["m"] == ("BASE TABLE", [(7,)])
    assert run(project, m_kind="view").success
    assert relations(project)["m"] == ("VIEW", [(7,)])
    assert run(project, m_kind="table").success
    assert relations(project)["m"] == ("BASE TABLE", [(7,)])


def test_a_failed_create_keeps_the_old_view_and_table(project: Path) -> None:
    assert run(project).success
    before = relations(project)
    # The view cannot bind, so it and everything after it fail; nothing is lost.
    outcome = run(project, v_value="no_such_column")
    assert not outcome.success
    assert outcome.statuses.get("error") == 1
    assert relations(project) == before
    # The table's query fails (its view is fine): the old table stays, with its rows.
    outcome = run(project, t_value="no_such_column")
    assert not outcome.success
    assert relations(project)["t"] == ("BASE TABLE", [(1,)])


def test_a_table_still_keeps_its_contract(project: Path) -> None:
    assert run(project).success
    outcome = run(project, t_value="'text'")
    assert not outcome.success
    message = " ".join(str(result.message) for result in outcome.results)
    assert "contract" in message.lower()
    assert relations(project)["t"] == ("BASE TABLE", [(1,)])
