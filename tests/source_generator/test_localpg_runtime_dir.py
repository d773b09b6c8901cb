"""Importing pgserver through core.localpg warns of nothing, with or without XDG_RUNTIME_DIR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: pgserver resolves its runtime folder once, at its first import.
PROBE = """
import os, stat
from pathlib import Path
from core import localpg

localpg.local_status(Path(os.environ["PROBE_PGDATA"]))
from pgserver.postgres_server import PostgresServer  # imported by local_status already
runtime = PostgresServer.lock_path.parent.parent
info = runtime.stat()
print(runtime, oct(stat.S_IMODE(info.st_mode)), info.st_uid == os.getuid())
print(os.environ.get("XDG_RUNTIME_DIR"))
"""


def probe(env: dict[str, str]) -> list[str]:
    # -W error: any warning, the platformdirs RuntimeDirWarning included, fails the import.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "Warning" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def test_without_xdg_runtime_dir_pgserver_gets_a_private_one_and_no_warning() -> None:
    # A short TMPDIR of our own, so the runtime folder is this test's alone.
    tmp = Path(tempfile.mkdtemp(prefix="mdp-rt-", dir="/tmp"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        env.update(TMPDIR=str(tmp), PROBE_PGDATA=str(tmp / "pg"))
        where, leaked = probe(env)
        runtime, mode, owned = where.split()
        # Under the short folder the sockets use, private to this user as XDG requires ...
        assert Path(runtime).is_relative_to(tmp) and (mode, owned) == ("0o700", "True"), where
        # ... and set only for the import, not for the processes mdp starts later.
        assert leaked == "None"

        # A runtime folder the user set is kept.
        mine = tmp / "mine"
        mine.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(mine)
        where, kept = probe(env)
        assert where.startswith(f"{mine} ") and kept == str(mine), where
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
