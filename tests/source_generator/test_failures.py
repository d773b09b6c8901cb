"""A failed cycle leaves no trace; an unreachable source gives a clear error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

import source_generator.simulation as simulation
from core import localpg
from mdp.cli import app
from source_generator import GeneratorConfig, generate_cycle
from tests.source_generator.test_cycles import snapshot

pytestmark = pytest.mark.postgres

START = datetime(2025, 9, 1, tzinfo=UTC)
CONFIG = GeneratorConfig(rows_per_cycle=3000, seed=13)


def test_an_exception_inside_a_cycle_leaves_no_trace(
    source_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = simulation.copy_rows

    def failing_copy(conn: psycopg.Connection, table: str, rows: Any, **kwargs: Any) -> None:
        if table == "payments":
            raise RuntimeError("disk full")
        real_copy(conn, table, rows, **kwargs)

    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, CONFIG, START)
        before = snapshot(conn)
        monkeypatch.setattr(simulation, "copy_rows", failing_copy)
        with pytest.raises(RuntimeError, match="disk full"):
            generate_cycle(conn, CONFIG, START + timedelta(hours=2))
        monkeypatch.setattr(simulation, "copy_rows", real_copy)
        assert snapshot(conn) == before
        # The connection stays usable and the next cycle reuses no committed id.
        summary = generate_cycle(conn, CONFIG, START + timedelta(hours=4))
        assert summary.rows_inserted - summary.inserted["payments"] == 3000


_KILLED_CYCLE = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timezone
    import psycopg
    from source_generator import GeneratorConfig, generate_cycle

    def pause(table, rows):
        if table == "payments":  # every table written and updated, not yet committed
            print("READY", flush=True)
            time.sleep(120)

    with psycopg.connect(sys.argv[1]) as conn:
        generate_cycle(conn, GeneratorConfig(rows_per_cycle=3000, seed=13),
                       datetime(2025, 9, 2, tzinfo=timezone.utc), on_rows=pause)
    """
)


def test_killing_the_process_inside_a_cycle_leaves_no_trace(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, CONFIG, START)
        before = snapshot(conn)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CYCLE, source_dsn],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        with psycopg.connect(source_dsn) as conn:
            # The cycle holds its rows in an open transaction right now.
            open_tx = conn.execute(
                "select count(*) from pg_stat_activity "
                "where datname = current_database() and state = 'idle in transaction'"
            ).fetchone()
            assert open_tx == (1,)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with psycopg.connect(source_dsn) as conn:
        assert snapshot(conn) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_source_is_retried_with_backoff_then_named_without_its_password() -> None:
    dsn = f"postgresql://writer:s3cret-pw@127.0.0.1:{_closed_port()}/app"
    delays: list[float] = []
    with pytest.raises(localpg.SourceUnreachable) as caught:
        localpg.connect(dsn, attempts=4, first_delay=0.25, sleep=delays.append)
    message = str(caught.value)
    assert delays == [0.25, 0.5, 1.0]
    assert "s3cret-pw" not in message
    assert "postgresql://writer:***@127.0.0.1" in message
    assert "after 4 attempts" in message
    assert "MDP_SOURCE_DSN" in message and "Nothing was written" in message


def test_the_cli_reports_an_unreachable_source_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", f"postgresql://writer:pw9@127.0.0.1:{_closed_port()}/app")
    monkeypatch.setenv("MDP_SOURCE_CONNECT_ATTEMPTS", "2")
    result = CliRunner().invoke(app, ["generate", "--rows-per-cycle", "10"])
    assert result.exit_code == 2
    assert "Could not reach the source database" in result.output
    assert "pw9" not in result.output


def test_a_malformed_dsn_is_named_without_its_password() -> None:
    with pytest.raises(localpg.SourceUnreachable, match="not a valid PostgreSQL connection"):
        localpg.connect("host=db password=s3cret bogus_option=1 =broken", attempts=1)
    malformed = "host=db password=s3cret =broken"
    with pytest.raises(localpg.SourceUnreachable) as err:
        localpg.connect(malformed, attempts=1)
    assert "s3cret" not in str(err.value)
    assert localpg.redact(malformed) in str(err.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:secret@db:5432/app", "postgresql://u:***@db:5432/app"),
        ("postgresql://u@db/app?password=secret&sslmode=require", "password=***&sslmode=require"),
        ("host=db user=u password=secret dbname=app", "password=*** dbname=app"),
        ("host=db password='se cret' dbname=app", "password=*** dbname=app"),
        ("postgresql://postgres:@/app?host=/tmp/x", "postgresql://postgres:@/app?host=/tmp/x"),
    ],
)
def test_redact_hides_passwords_in_every_dsn_form(dsn: str, shown: str) -> None:
    assert shown in localpg.redact(dsn)
    assert "secret" not in localpg.redact(dsn)
