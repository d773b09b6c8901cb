"""The dashboard's Streamlit server: the command that serves `app.py`, and a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501


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
    """Start the dashboard server in the background; returns the process and its address."""
    if port == 0:
        port = free_port(host)
    popen.setdefault("env", os.environ.copy())
    process = subprocess.Popen(streamlit_command(host, port), **popen)  # type: ignore[call-overload]
    return process, f"http://{host}:{port}"
