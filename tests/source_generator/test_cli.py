"""The `mdp` commands of the generator: generate, status, stop, demo, and the benchmark's run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from mdp.cli import app
from mdp.generate import parse_duration
from source_generator import bench

pytestmark = pytest.mark.postgres
runner = CliRunner()


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"select count(*) from app.{table}").fetchone()
    assert row is not None
    return int(row[0])


def test_generate_writes_the_cycles_and_prints_a_summary(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty database: `generate` applies the migrations and the plan seed itself.
    monkeypatch.setenv("MDP_SOURCE_DSN", empty_dsn)
    args = ["generate", "--cycles", "3", "--rows-per-cycle", "400", "--seed", "3"]
    result = runner.invoke(app, [*args, "--start", "2025-01-01T00:00:00Z", "--dirt", "D12=0.5"])
    assert result.exit_code == 0, result.output
    assert "3 cycle(s) written" in result.output
    assert "total inserted" in result.output
    assert "D12 discount_amount null" in result.output
    assert "cycle clocks 2025-01-01 00:00:00Z .. 2025-01-01 04:00:00Z" in result.output
    with psycopg.connect(empty_dsn) as conn:
        clocks = conn.execute("select distinct updated_at from app.users order by 1").fetchall()
        nulls = conn.execute(
            "select avg((discount_amount is null)::int) from app.payments"
        ).fetchone()
    # 400 rows per cycle in users, banks, cards and subscriptions; payments are their billing.
    assert (
        _count(empty_dsn, "users")
        + _count(empty_dsn, "subscriptions")
        + _count(empty_dsn, "banks")
        + _count(empty_dsn, "credit_cards")
        == 1200
    )
    assert _count(empty_dsn, "payments") >= _count(empty_dsn, "subscriptions")
    assert [c.isoformat() for (c,) in clocks][:1] == ["2025-01-01T00:00:00+00:00"]
    assert len(clocks) == 3
    assert nulls is not None and 0.35 < float(nulls[0]) < 0.65
    assert _count(empty_dsn, "plans") == 5


def test_generate_every_runs_a_cycle_per_tick(
    source_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", source_dsn)
    result = runner.invoke(
        app, ["generate", "--every", "0.2s", "--cycles", "2", "--rows-per-cycle", "100"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("cycle committed at") == 2
    assert _count(source_dsn, "users") + _count(source_dsn, "payments") > 0
    with psycopg.connect(source_dsn) as conn:
        ticks = conn.execute("select count(distinct updated_at) from app.banks").fetchone()
    assert ticks == (2,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dirt", "D4=2"], "D4 must be between 0 and 1"),
        (["--every", "soon"], "is not a duration"),
        (["--start", "yesterday"], "is not an ISO timestamp"),
        (["--cycles", "0"], "0 only with --every"),
    ],
)
def test_generate_refuses_bad_options_before_touching_the_source(
    args: list[str], message: str, source_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", source_dsn)
    result = runner.invoke(app, ["generate", *args])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ").replace("│", "").replace("  ", " ")
    assert _count(source_dsn, "users") == 0


def test_status_json_names_the_source_and_the_local_state(
    pg_server: str, mdp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["paths"]["home"] == str(mdp_home)
    assert data["paths"]["pg"] == str(mdp_home / "pg")
    analytics = mdp_home / "warehouse" / "analytics.duckdb"
    assert data["analytics"]["path"] == str(analytics)
    assert data["analytics"]["exists"] is analytics.is_file()
    assert data["source"]["local_running"] is True
    with psycopg.connect(data["source"]["dsn"]) as conn:
        assert conn.execute("select current_database()").fetchone() == ("app",)

    monkeypatch.setenv("MDP_SOURCE_DSN", "postgresql://gen:hunter2@rds.example:5432/app")
    data = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert data["source"]["dsn"] == "postgresql://gen:***@rds.example:5432/app"
    assert data["source"]["dsn_from_env"] is True


def test_stop_when_nothing_runs_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_HOME", str(tmp_path))
    result = runner.invoke(app, ["stop"])
    assert result.exit_code == 0
    assert "was not running" in result.output


def test_durations() -> None:
    assert parse_duration("2h").total_seconds() == 7200
    assert parse_duration("30m").total_seconds() == 1800
    assert parse_duration("1.5s").total_seconds() == 1.5
    assert parse_duration("90").total_seconds() == 90


def test_the_benchmark_times_the_generator_and_a_bare_copy_of_the_same_rows(pg_server: str) -> None:
    result = bench.run(rows=3000, rows_per_cycle=1000, seed=1, server_dsn=pg_server)
    # Payments come on top of each cycle's rows, so 3,000 rows take fewer than 3 cycles.
    assert result.rows >= 3000 and result.cycles <= 3
    assert result.generator_seconds > 0 and result.copy_seconds > 0
    assert result.generator_cpu > 0 and result.copy_cpu > 0
    assert result.ratio == pytest.approx(result.copy_seconds / result.generator_seconds)
    with psycopg.connect(pg_server) as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname like 'mdp_bench_%'"
        ).fetchone()
    assert left == (0,)


def test_loop_mode_survives_an_unreachable_source_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MDP_SOURCE_DSN", f"postgresql://gen:pw@127.0.0.1:{port}/app")
    monkeypatch.setenv("MDP_SOURCE_CONNECT_ATTEMPTS", "1")
    result = runner.invoke(app, ["generate", "--every", "0.1s", "--cycles", "2"])
    assert result.exit_code == 1
    assert result.output.count("retrying at the next tick") == 2
    assert "2 of the requested cycles could not be written" in result.output


def test_sigterm_stops_the_loop_and_keeps_committed_cycles(source_dsn: str) -> None:
    env = {**os.environ, "MDP_SOURCE_DSN": source_dsn}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mdp"), "generate", "--every", "1h", "--cycles", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "cycle committed at" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Stopped. Committed cycles are kept" in rest
    assert _count(source_dsn, "users") == 300  # 30% of the default 1,000 rows of one cycle
