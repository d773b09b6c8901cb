"""`mdp dashboard` and `mdp export` from the command line."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import paths
from dashboard import background
from exports.sample import build_sample_warehouse
from mdp.cli import app

runner = CliRunner()


@pytest.fixture
def home(private_home: Path) -> Path:
    return private_home


@pytest.mark.slow
def test_background_dashboard_prints_its_address_and_stops(home: Path) -> None:
    result = runner.invoke(app, ["dashboard", "--background", "--port", "0"])
    try:
        assert result.exit_code == 0, result.output
        match = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)", result.output)
        assert match, result.output
        assert background.healthy(match.group(1))
        port = match.group(1).rsplit(":", 1)[1]
        # The running server is reported, not doubled, and not silently reused.
        again = runner.invoke(app, ["dashboard", "--background", "--port", port])
        assert again.exit_code == 0, again.output
        assert f"already running: {match.group(1)}" in again.output
        # What `make dashboard` runs after `make demo`: it points at the running server.
        foreground = runner.invoke(app, ["dashboard", "--port", port])
        assert foreground.exit_code == 0, foreground.output
        assert f"already running in the background: {match.group(1)}" in foreground.output
        # Asking for another port while it runs is an error that names both.
        elsewhere = runner.invoke(app, ["dashboard", "--background", "--port", "8599"])
        assert elsewhere.exit_code == 1
        assert match.group(1) in elsewhere.output and "port 8599" in elsewhere.output
    finally:
        stopped = runner.invoke(app, ["dashboard", "--stop"])
    assert "Dashboard stopped." in stopped.output
    assert not background.healthy(match.group(1))


def test_export_command_reports_tables_and_fails_clearly_without_marts(home: Path) -> None:
    empty = runner.invoke(app, ["export"])
    assert empty.exit_code == 1
    assert "does not exist" in empty.output and "make demo" in empty.output
    build_sample_warehouse(paths.analytics_db(), payments=1_000, months=2)
    target = home / "elsewhere"
    done = runner.invoke(app, ["export", "--target", str(target), "--table", "fct_payments"])
    assert done.exit_code == 0, done.output
    assert (
        "fct_payments" in done.output and "2 partitions by year_month, all written" in done.output
    )
    assert sorted(p.name for p in (target / "fct_payments").iterdir() if p.is_dir()) == [
        "year_month=2026-09",
        "year_month=2026-10",
    ]
    # Again, with nothing changed in the warehouse: every partition's file is kept.
    again = runner.invoke(app, ["export", "--target", str(target), "--table", "fct_payments"])
    assert again.exit_code == 0, again.output
    assert "2 partitions by year_month, 0 written" in again.output


@pytest.mark.slow
def test_background_dashboard_starts_reports_and_stops(home: Path) -> None:
    build_sample_warehouse(paths.analytics_db(), payments=1_000, months=2)
    try:
        started = runner.invoke(app, ["dashboard", "--background", "--port", "0"])
        assert started.exit_code == 0, started.output
        url = background.running()
        assert url is not None and background.healthy(url["url"])
        assert f"Dashboard: {url['url']}" in started.output
    finally:
        stopped = runner.invoke(app, ["dashboard", "--stop"])
    assert stopped.exit_code == 0 and "Dashboard stopped." in stopped.output
    assert background.running() is None


@pytest.mark.parametrize("mode", [["--background"], []], ids=["background", "foreground"])
def test_a_busy_port_is_an_error_naming_it(home: Path, mode: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["dashboard", *mode, "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"Port {port} on 127.0.0.1 is in use" in result.output
    assert f"--port {port + 1}" in result.output
    assert background.running() is None


def test_export_errors_name_their_cause_and_fix(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_sample_warehouse(paths.analytics_db(), payments=200, months=2)
    missing_parent = home / "no" / "such" / "dir"
    local = runner.invoke(app, ["export", "--target", str(missing_parent / "x")])
    assert local.exit_code == 1
    assert f"{missing_parent} (parent of the target" in local.output
    assert f"mkdir -p {missing_parent}" in local.output
    assert not (home / "no").exists()

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "none"))
    monkeypatch.setenv("MDP_EXPORTS_S3_REGION", "us-east-1")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # Nothing listens there: the SDK fails with a network error, as it does without credentials.
    monkeypatch.setenv("MDP_EXPORTS_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    s3 = runner.invoke(app, ["export", "--target", "s3://bucket/x"])
    assert s3.exit_code == 1
    assert s3.output.startswith("Could not write the export to s3://bucket/x")
    for fix in ("AWS credentials", "MDP_EXPORTS_S3_REGION", "MDP_EXPORTS_S3_ENDPOINT"):
        assert fix in s3.output
    assert "Traceback" not in s3.output
