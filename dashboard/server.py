"""The dashboard's Streamlit server: the command that serves `app.py`, and a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501


class PortBusy(RuntimeError):
    """The requested port is taken by another program; the message names it and the fix."""

    def __init__(self, host: str, port: int) -> None:
        self.port = port
        super().__init__(
            f"Port {port} on {host} is in use by another program, so no dashboard was started. "
            f"Choose another port (`mdp dashboard --port {port + 1}`, or "
            f"`make dashboard PORT={port + 1}`), or stop what listens there "
            f"(`ss -ltnp 'sport = :{port}'` shows it)."
        )


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def streamlit_command(host: str, port: int) -> list[str]:
    """The Streamlit server command: headless, no telemetry, no file watcher, bound to `host`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def serve(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, **popen: object
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the dashboard server in the background; returns the process and its address.

    Port 0 picks a free port; a port in use raises PortBusy rather than moving elsewhere.
    """
    if port == 0:
        port = free_port(host)
    elif not port_free(host, port):
        raise PortBusy(host, port)
    popen.setdefault("env", os.environ.copy())
    process = subprocess.Popen(streamlit_command(host, port), **popen)  # type: ignore[call-overload]
    return process, f"http://{host}:{port}"
