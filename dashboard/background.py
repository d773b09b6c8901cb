"""A dashboard server that outlives the command that started it (`make demo`, `mdp dashboard --background`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core import paths
from dashboard.server import DEFAULT_PORT, PortBusy, free_port, port_free, serve


def state_file() -> Path:
    return paths.local_home() / "dashboard.json"


def log_file() -> Path:
    return paths.local_home() / "logs" / "dashboard.log"


class AlreadyRunningElsewhere(RuntimeError):
    """A background dashboard runs, on another port than the one asked for."""


@dataclass(frozen=True)
class Started:
    """The background dashboard's address, and how it came to be there."""

    url: str
    # True when a server started earlier was found running and kept.
    already_running: bool = False
    # The port asked for, when it was busy and a free one was taken instead (fallback only).
    busy_port: int | None = None

    @property
    def port(self) -> int:
        return int(urlparse(self.url).port or 0)


def healthy(url: str) -> bool:
    """Whether the dashboard at `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        # Reap it first when this process started it, so a finished server is not a zombie.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> dict[str, Any] | None:
    """The recorded background server, if it is still up."""
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    if _alive(int(state["pid"])) and healthy(str(state["url"])):
        return dict(state)
    return None


def start(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    timeout: float = 60,
    fallback: bool = False,
) -> Started:
    """Start the server in its own session, or report the one already running.

    A port in use by another program raises PortBusy, unless `fallback` (the demo) asks for a
    free port instead, which the result then reports. A server already running on another port
    than the one asked for raises AlreadyRunningElsewhere.
    """
    current = running()
    if current is not None:
        found = Started(str(current["url"]), already_running=True)
        if port not in (0, found.port):
            raise AlreadyRunningElsewhere(
                f"The dashboard is already running at {found.url}, not on port {port}. "
                f"Open it there, or stop it (`mdp dashboard --stop`) and start it on port {port}."
            )
        return found
    busy_port = None
    if port != 0 and not port_free(host, port):
        if not fallback:
            raise PortBusy(host, port)
        busy_port, port = port, free_port(host)
    log_file().parent.mkdir(parents=True, exist_ok=True)
    with log_file().open("ab") as log:
        process, url = serve(
            host,
            port,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"The dashboard server did not start within {timeout:.0f} s; nothing else was "
                f"changed. Its log is {log_file()}."
            )
        time.sleep(0.3)
    state_file().write_text(json.dumps({"pid": process.pid, "url": url}))
    return Started(url, busy_port=busy_port)


def stop() -> bool:
    """Stop the recorded background server; False when none was running."""
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return False
    state_file().unlink(missing_ok=True)
    pid = int(state["pid"])
    if not _alive(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.1)
    return True
