"""The migration that creates Airbyte's read-only replication user, against a real PostgreSQL 16."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from infra.cloud_init import FILES

pytestmark = pytest.mark.postgres
READER = "airbyte_reader"
PASSWORD = "Zq8vW2nR5tY7uI9oP1aS3dF6gH4jK0lX"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mdp_replication_user", FILES / "mdp_replication_user.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Any, Path]]:
    pgserver = pytest.importorskip("pgserver")
    # Not under pytest's private temp: as root, pgserver runs PostgreSQL as another system user.
    home = Path(tempfile.mkdtemp(prefix="mdp-infra-pg-"))
    home.chmod(0o755)
    srv = pgserver.get_server(home / "pg", cleanup_mode="stop")
    # Password logins for the reader, so the SCRAM verifier is proven by a real sign-in.
    hba = home / "pg" / "pg_hba.conf"
    hba.write_text(f"local all {READER} scram-sha-256\n" + hba.read_text())
    with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
        conn.execute("select pg_reload_conf()")
        conn.execute("create database app")
    try:
        yield srv, home
    finally:
        srv.cleanup()
        shutil.rmtree(home, ignore_errors=True)


def _admin(server: tuple[Any, Path]) -> psycopg.Connection[Any]:
    uri = server[0].get_uri().replace("/postgres?", "/app?")
    return psycopg.connect(uri, autocommit=True)


def _reader(server: tuple[Any, Path], password: str = PASSWORD) -> psycopg.Connection[Any]:
    socket_dir = server[0].get_uri().split("host=")[1]
    return psycopg.connect(host=socket_dir, dbname="app", user=READER, password=password)


def test_reader_signs_in_with_its_password_and_only_reads(server: tuple[Any, Path]) -> None:
    script = _script()
    with _admin(server) as admin:
        script.ensure_reader(admin, READER, PASSWORD, "app", logical=False)
        admin.execute("create table if not exists app.plans (id bigint primary key, name text)")
        admin.execute("insert into app.plans values (1, 'Basic') on conflict do nothing")
        stored = admin.execute(
            "select rolpassword from pg_authid where rolname = %s", (READER,)
        ).fetchone()
    # Stored verbatim: PostgreSQL accepted it as a SCRAM verifier, not as a plain password.
    assert stored and stored[0].startswith("SCRAM-SHA-256$4096:")
    with _reader(server) as reader:
        assert reader.execute("select name from app.plans").fetchall() == [("Basic",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("insert into app.plans values (2, 'Gold')")
    with pytest.raises(psycopg.OperationalError):
        _reader(server, password="wrong-password").close()


def test_tables_created_later_are_readable_and_a_rerun_rotates_the_password(
    server: tuple[Any, Path],
) -> None:
    script = _script()
    rotated = "N3wPassw0rdAfterRotation7x"
    with _admin(server) as admin:
        script.ensure_reader(admin, READER, PASSWORD, "app", logical=False)
        admin.execute("create table if not exists app.payments (id bigint primary key)")
        script.ensure_reader(admin, READER, rotated, "app", logical=False)
        count = admin.execute(
            "select count(*) from pg_roles where rolname = %s", (READER,)
        ).fetchone()
    assert count == (1,)
    with _reader(server, rotated) as reader:
        assert reader.execute("select count(*) from app.payments").fetchone() == (0,)
        reader.rollback()
        # Even with read-only switched off, the grants allow nothing but reads.
        reader.autocommit = True
        reader.execute("set default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("create table app.evil (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("delete from app.payments")


def test_cdc_grants_rds_replication(server: tuple[Any, Path]) -> None:
    script = _script()
    with _admin(server) as admin:
        # RDS provides this role; a local server needs a stand-in.
        admin.execute(
            "do $$ begin create role rds_replication; exception when duplicate_object then null; end $$"
        )
        script.ensure_reader(admin, READER, PASSWORD, "app", logical=True)
        member = admin.execute(
            "select pg_has_role(%s, 'rds_replication', 'member')", (READER,)
        ).fetchone()
    assert member == (True,)


@pytest.mark.parametrize("script", sorted(p.name for p in FILES.glob("*.sh")))
def test_shell_scripts_parse(script: str) -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n", str(FILES / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
