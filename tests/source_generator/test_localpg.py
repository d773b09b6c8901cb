"""The embedded PostgreSQL: reused between runs, started in deep folders, stopped on request."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from core import localpg

pytestmark = pytest.mark.postgres


def test_start_reuses_the_running_server(pg_server: str, mdp_home: Path) -> None:
    status = localpg.local_status()
    assert status["running"] and status["pgdata"] == str(mdp_home / "pg")
    dsn = localpg.start()
    again = localpg.start()
    assert dsn == again == status["dsn"]
    assert localpg.local_status()["pid"] == status["pid"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select current_database()").fetchone() == ("app",)


def test_source_dsn_prefers_the_environment(
    pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", "postgresql://rds.example:5432/app")
    assert localpg.source_dsn() == "postgresql://rds.example:5432/app"
    monkeypatch.delenv("MDP_SOURCE_DSN")
    assert localpg.source_dsn(start_local=False) == localpg.local_status()["dsn"]


def test_a_data_folder_too_deep_for_a_unix_socket_still_starts(pg_server: str) -> None:
    # Our own folder (not pytest's, which is private to its owner) deep enough that
    # `<pgdata>/.s.PGSQL.5432` exceeds the 107-byte socket path limit.
    base = Path(tempfile.mkdtemp(prefix="mdp-deep-"))
    base.chmod(0o755)
    deep = base / ("d" * 60) / ("e" * 60) / "pg"
    deep.parent.mkdir(parents=True)
    assert len(str(deep / ".s.PGSQL.5432")) > 107
    try:
        dsn = localpg.start(deep)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        socket_dir = dsn.split("host=", 1)[1]
        assert len(socket_dir) < 60 and socket_dir != str(deep)
        assert localpg.start(deep) == dsn
        assert localpg.stop(deep, mode="immediate") is True
        assert localpg.local_status(deep)["running"] is False
        assert localpg.stop(deep) is False
    finally:
        localpg.stop(deep, mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
