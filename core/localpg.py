"""The source database: embedded PostgreSQL (pgserver) under `.local/pg`, or any server named by `MDP_SOURCE_DSN`."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from core import paths

SOURCE_DSN_ENV = "MDP_SOURCE_DSN"
SOURCE_DATABASE = "app"
CONNECT_ATTEMPTS_ENV = "MDP_SOURCE_CONNECT_ATTEMPTS"


class SourceUnreachable(RuntimeError):
    """The source database could not be reached after retrying."""


class LocalPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or stopped."""


def redact(dsn: str) -> str:
    """The DSN with its password replaced by `***`, safe to print and log."""
    redacted = re.sub(r"(://[^:/@?]*:)[^@]+@", r"\1***@", dsn)
    redacted = re.sub(r"(password=)('(?:[^'\\]|\\.)*'|[^\s&]*)", r"\1***", redacted)
    return redacted


def _short_runtime_dir() -> Path:
    """A short folder for the socket when the data folder is too deep for a unix socket path."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 40:
        base = Path("/tmp")
    return base / f"mdp-pg-{uid}"


@contextlib.contextmanager
def _xdg_runtime_dir() -> Iterator[None]:
    """XDG_RUNTIME_DIR set, while pgserver is imported, to a private folder when it is unset.

    pgserver asks platformdirs for the user's runtime folder when it is imported, to place its
    inter-process lock. With XDG_RUNTIME_DIR unset (containers, CI, cron) platformdirs warns
    (RuntimeDirWarning) and falls back to a folder of its choosing. This gives it one that meets
    the XDG rules (owned by this user, mode 0700) next to the socket folder, and keeps a value
    the user set.
    """
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        yield
        return
    # Not the socket folder itself: as root, PostgreSQL runs as another user and must reach it.
    runtime = _short_runtime_dir() / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    if runtime.is_symlink() or runtime.stat().st_uid != os.getuid():
        raise LocalPostgresError(
            f"{runtime} belongs to another user: remove it, or set XDG_RUNTIME_DIR to a private "
            "folder of yours, then retry."
        )
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        yield
    finally:
        del os.environ["XDG_RUNTIME_DIR"]


def _import_pgserver() -> Any:
    # Imported here, not at the top: the import needs XDG_RUNTIME_DIR in place (see above).
    with _xdg_runtime_dir():
        import pgserver
        from pgserver import postgres_server

    # A unix socket path must fit in 107 bytes. pgserver puts the socket in the data folder, or
    # in this folder when that is too deep; its own default can itself be deep, so use a short one.
    postgres_server.PostgresServer.runtime_path = _short_runtime_dir()
    return pgserver


def _running_postmaster(pgdata: Path) -> Any | None:
    _import_pgserver()
    from pgserver.utils import PostmasterInfo

    if not (pgdata / "postmaster.pid").exists():
        return None
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        return None
    if info is None or not info.is_running():
        return None
    return info


def _uri_for(server_uri: str, database: str) -> str:
    # pgserver URIs look like postgresql://postgres:@/postgres?host=/socket/dir
    return re.sub(r"(@[^/]*/)[^?]*", rf"\g<1>{database}", server_uri, count=1)


def start(pgdata: Path | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL and return the DSN of its `app` database."""
    pgdata = (pgdata or paths.pg_dir()).resolve()
    info = _running_postmaster(pgdata)
    if info is not None:
        server_uri = info.get_uri()
    else:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        pgserver = _import_pgserver()
        try:
            # cleanup_mode=None keeps the server running after this process exits,
            # so the next command reuses it.
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as err:
            log = pgdata / "log"
            raise LocalPostgresError(
                f"The embedded PostgreSQL did not start in {pgdata} ({err}). "
                f"No data was changed. Read its log at {log}, or run `mdp stop` and try again."
            ) from err
        server_uri = server.get_uri()
    ensure_database(server_uri, SOURCE_DATABASE)
    return _uri_for(server_uri, SOURCE_DATABASE)


def ensure_database(server_uri: str, database: str, template: str | None = None) -> None:
    """Create `database` on the server if it does not exist yet."""
    with connect(server_uri, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if exists:
            return
        statement = sql.SQL("create database {}").format(sql.Identifier(database))
        if template:
            statement = sql.SQL("{} template {}").format(statement, sql.Identifier(template))
        # Another process may create it between the check and the create.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            conn.execute(statement)


def stop(pgdata: Path | None = None, mode: str = "fast") -> bool:
    """Stop the embedded PostgreSQL (pg_ctl shutdown `mode`); returns False when it was not running."""
    pgdata = (pgdata or paths.pg_dir()).resolve()
    if _running_postmaster(pgdata) is None:
        return False
    _import_pgserver()
    from pgserver import _commands

    pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # generated at import time

    user = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        user = "pgserver"  # pgserver runs the server as this system user when started as root
    try:
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=pgdata, user=user, timeout=60)
    except (subprocess.SubprocessError, OSError) as err:
        raise LocalPostgresError(
            f"The embedded PostgreSQL in {pgdata} did not stop ({err}). Its data is untouched; "
            f"read {pgdata / 'log'} and stop the postgres process by its pid in {pgdata / 'postmaster.pid'}."
        ) from err
    return True


def local_status(pgdata: Path | None = None) -> dict[str, Any]:
    """Whether the embedded PostgreSQL runs, and how to reach it, without starting it."""
    pgdata = (pgdata or paths.pg_dir()).resolve()
    info = _running_postmaster(pgdata)
    return {
        "running": info is not None,
        "pgdata": str(pgdata),
        "pid": info.pid if info is not None else None,
        "dsn": _uri_for(info.get_uri(), SOURCE_DATABASE) if info is not None else None,
    }


def source_dsn(start_local: bool = True) -> str | None:
    """The DSN the generator writes to: `MDP_SOURCE_DSN`, else the embedded PostgreSQL."""
    override = os.environ.get(SOURCE_DSN_ENV)
    if override:
        return override
    if start_local:
        return start()
    status = local_status()
    return status["dsn"] if status["running"] else None


def connect_attempts() -> int:
    """How often to try reaching the source before giving up (`MDP_SOURCE_CONNECT_ATTEMPTS`, default 5)."""
    raw = os.environ.get(CONNECT_ATTEMPTS_ENV, "5")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"{CONNECT_ATTEMPTS_ENV}={raw!r} must be a whole number") from None


def connect(
    dsn: str,
    *,
    attempts: int | None = None,
    first_delay: float = 0.5,
    autocommit: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Connect, retrying with exponential backoff, or raise SourceUnreachable naming the DSN without its password."""
    if attempts is None:
        attempts = connect_attempts()
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        raise SourceUnreachable(
            f"The source DSN {redact(dsn)} is not a valid PostgreSQL connection string. "
            f"Nothing was written. Fix {SOURCE_DSN_ENV}, e.g. "
            "postgresql://user:password@host:5432/app"
        ) from None
    delay = first_delay
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10, **kwargs)
        except psycopg.OperationalError as err:
            last_error = err
            if attempt < attempts:
                sleep(delay)
                delay *= 2
    reason = str(last_error).strip().splitlines()[0] if last_error else "unknown error"
    if password:
        reason = reason.replace(str(password), "***")
    raise SourceUnreachable(
        f"Could not reach the source database at {redact(dsn)} after {attempts} attempts "
        f"({reason}). Nothing was written. Check that the server is running and reachable "
        f"from this host, and that {SOURCE_DSN_ENV} (if set) names the right host, port, "
        f"database, user and password; unset {SOURCE_DSN_ENV} to use the embedded PostgreSQL."
    )
