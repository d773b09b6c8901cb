"""Shared fixtures: local state in a temporary folder, one embedded PostgreSQL per test session."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from core import localpg
from rehearsal.standins import fakesnow_server
from source_generator.migrate import migrate

# Shared checks outside test modules still show what differed when they fail.
pytest.register_assert_rewrite("tests.orchestration.cloud_services")

# The plans of every test database are seeded at this clock, so runs are reproducible.
PLAN_SEED_CLOCK = datetime(2024, 1, 1, tzinfo=UTC)
_TEMPLATE = "mdp_source_template"
_counter = itertools.count(1)
# The slowest files, slowest first (from the durations every run prints). `make test` runs each
# file whole in one of its workers, in collection order: started first, they end together.
SLOWEST_FILES = (
    "rehearsal/test_rehearsal.py",
    "orchestration/test_mwaa_airflow.py",
    "orchestration/test_make_airflow.py",
    "orchestration/test_dag_run.py",
    "orchestration/test_cloud_dag_run.py",
    "mdp/test_demo.py",
    "transform/test_snowflake_build.py",
    "dashboard/test_browser.py",
    "dashboard/test_believability.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under several workers (`make test`), hand out the slowest files first."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    tests_dir = Path(__file__).parent
    rank = {tests_dir / name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


@pytest.fixture(scope="session")
def start_fakesnow() -> Callable[..., Any]:
    """fakesnow's `server()` context manager: a Snowflake-dialect server on 127.0.0.1."""
    return fakesnow_server


@pytest.fixture(scope="session", autouse=True)
def _quiet_pgserver_exit() -> Iterator[None]:
    """pgserver logs from an atexit hook, after pytest has closed the streams its handlers use."""
    yield
    logging.getLogger("pgserver").disabled = True


@pytest.fixture(scope="session", autouse=True)
def mdp_home() -> Iterator[Path]:
    """Point MDP_HOME at a temporary folder so no test reads or writes a user's `.local/`."""
    # Not under pytest's base temp: that folder is private to its owner, and the embedded
    # PostgreSQL runs as another system user when tests run as root.
    home = Path(tempfile.mkdtemp(prefix="mdp-test-"))
    home.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        # Tests never write to a real source named in the user's environment.
        mp.delenv(localpg.SOURCE_DSN_ENV, raising=False)
        try:
            yield home
        finally:
            # The folder is deleted next, so skip the shutdown checkpoint.
            localpg.stop(home / "pg", mode="immediate")
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MDP_HOME for one test, on the local target, exporting to the default place."""
    home = tmp_path / "home"
    monkeypatch.setenv("MDP_HOME", str(home))
    monkeypatch.delenv("MDP_TARGET", raising=False)
    monkeypatch.delenv("MDP_EXPORTS_TARGET", raising=False)
    return home


@pytest.fixture(scope="session")
def pg_server(mdp_home: Path) -> Iterator[str]:
    """DSN of the `postgres` database of one embedded PostgreSQL shared by the whole session."""
    pgdata = mdp_home / "pg"
    app_dsn = localpg.start(pgdata)
    server_dsn = app_dsn.replace(f"/{localpg.SOURCE_DATABASE}?", "/postgres?", 1)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        # Throwaway data: trade durability for speed, as the suite runs on small shared machines.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("alter system set {} = off").format(sql.Identifier(setting)))
        conn.execute("select pg_reload_conf()")
    localpg.ensure_database(server_dsn, _TEMPLATE)
    with psycopg.connect(app_dsn.replace(f"/{localpg.SOURCE_DATABASE}?", f"/{_TEMPLATE}?")) as conn:
        migrate(conn, clock=PLAN_SEED_CLOCK)
    yield server_dsn


def database_dsn(server_dsn: str, database: str) -> str:
    return server_dsn.replace("/postgres?", f"/{database}?", 1)


def _create_database(server_dsn: str, template: str | None) -> str:
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        statement = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("{} template {}").format(statement, sql.Identifier(template))
        conn.execute(statement)
    # Databases are not dropped one by one: a drop forces a checkpoint, and the whole server
    # folder is deleted when the session ends.
    return database_dsn(server_dsn, name)


@pytest.fixture(scope="session")
def source_db_factory(pg_server: str) -> Callable[[], str]:
    """Creates a fresh source database (schema and plans applied) per call; for module fixtures too."""
    return lambda: _create_database(pg_server, _TEMPLATE)


@pytest.fixture
def empty_dsn(pg_server: str) -> str:
    """A fresh, empty database (no schema) on the session's server."""
    return _create_database(pg_server, None)


@pytest.fixture
def source_dsn(pg_server: str) -> str:
    """A fresh database with the source schema (contract section 1) and the plan seed applied."""
    return _create_database(pg_server, _TEMPLATE)


@pytest.fixture(scope="session")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`dbt build` on the local target over the dirty fixture, in a private MDP_HOME.

    One build per session, read by tests/transform and by the dashboard over real output.
    """
    # Deferred: only sessions that use the build pay for importing dbt and the fixture.
    from tests.transform import fixture
    from tests.transform.conftest import LocalBuild
    from transform import runner as transform

    home = tmp_path_factory.mktemp("mdp_home")
    # Only the build runs with this MDP_HOME: later tests in the session keep their own.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        fx = fixture.build()
        fixture.write_duckdb(home / "warehouse" / "raw.duckdb", fx)
        target_path = home / "dbt_target"
        outcome = transform.run_dbt(["build"], target="local", target_path=target_path)
    yield LocalBuild(home=home, fixture=fx, outcome=outcome, target_path=target_path)
