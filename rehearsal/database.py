"""The stand-in for RDS: a local PostgreSQL 16 (pgserver), reached over its unix socket.

It gets what RDS would have: the master user with the password RDS put in its secret, the
database the program names, and (for CDC) the `rds_replication` role. Every login except the
server's own superuser must then sign in with its password, as on RDS.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
from psycopg import sql

from core import localpg

_HBA_MARKER = "# mdp rehearsal: passwords as on RDS\n"


class StandInDatabase:
    """pgserver in a folder of its own; `reset` makes it a fresh instance for one rehearsal."""

    def __init__(self) -> None:
        # Not under a private temp folder: as root, pgserver runs PostgreSQL as another system user.
        self.home = Path(tempfile.mkdtemp(prefix="mdp-rehearsal-pg-"))
        self.home.chmod(0o755)
        self.pgdata = self.home / "pg"
        self.uri = ""
        # Roles of a host's own PostgreSQL served here too (the Airflow host's): no RDS reset drops them.
        self.host_roles: set[str] = set()

    def start(self) -> StandInDatabase:
        uri = localpg.start(self.pgdata)
        self.uri = uri.replace("/app?", "/postgres?")
        hba = self.pgdata / "pg_hba.conf"
        text = hba.read_text()
        if _HBA_MARKER not in text:
            current = localpg.connect(self.uri, autocommit=True)
            with current as conn:
                superuser = conn.execute("select current_user").fetchone()
                assert superuser
                hba.write_text(
                    _HBA_MARKER
                    + f"local all {superuser[0]} trust\nlocal all all scram-sha-256\n"
                    + text
                )
                conn.execute("select pg_reload_conf()")
        return self

    @property
    def socket_dir(self) -> str:
        return parse_qs(urlparse(self.uri).query)["host"][0]

    @property
    def port(self) -> int:
        return 5432

    @property
    def superuser_name(self) -> str:
        """The server's own superuser: the one login that needs no password (as `postgres` on a host)."""
        return urlparse(self.uri).username or "postgres"

    def host_database(self, dbname: str, role: str, fresh: bool) -> None:
        """Serve a host's own database here: `role` signs in over the socket without a password,
        as peer authentication lets the host's OS user of that name. `fresh` drops what an
        earlier boot left, as a new machine's cluster has neither."""
        self.host_roles.add(role)
        with self.superuser() as conn:
            if fresh:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(dbname)
                    )
                )
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
        hba = self.pgdata / "pg_hba.conf"
        line = f"local {dbname} {role} trust\n"
        text = hba.read_text()
        if line not in text:
            hba.write_text(text.replace(_HBA_MARKER, _HBA_MARKER + line, 1))
            with self.superuser() as conn:
                conn.execute("select pg_reload_conf()")

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.socket_dir, port=self.port, dbname=dbname, **kwargs)

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        uri = self.uri.replace("/postgres?", f"/{dbname}?")
        return psycopg.connect(uri, autocommit=True)

    def reset(self, dbname: str, master_user: str, master_password: str, logical: bool) -> None:
        """A fresh instance: the database, its master user (as RDS creates them), nothing else."""
        with self.superuser() as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
            me = conn.execute("select current_user").fetchone()
            assert me
            for (role,) in conn.execute(
                "select rolname from pg_roles where rolname !~ '^pg_' and rolname <> %s "
                "and rolname <> all(%s)",
                (me[0], sorted(self.host_roles)),
            ).fetchall():
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
            user = sql.Identifier(master_user)
            # RDS's master user is no superuser: it may create databases and roles.
            conn.execute(
                sql.SQL("create role {} login createdb createrole password {}").format(
                    user, sql.Literal(master_password)
                )
            )
            conn.execute(
                sql.SQL("create database {} owner {}").format(sql.Identifier(dbname), user)
            )
            if logical:
                conn.execute("create role rds_replication")
                conn.execute(sql.SQL("grant rds_replication to {} with admin option").format(user))

    @staticmethod
    def client_bin() -> Path:
        """PostgreSQL 16's client programs (psql, createuser, createdb), from pgserver's bundle."""
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("pgserver is not installed; run `make install`, then retry")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    def stop(self) -> None:
        try:
            localpg.stop(self.pgdata)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
