"""dbt with its imports done once: every call of the stand-in's `dbt` runs in a fork of this process.

Run by dbt's own environment's Python (the project's), never Airflow's. Cosmos still starts the
stand-in's `dbt` executable per task with its command line, environment and working directory,
reads its output and exit code; only the ~4 s of imports of each dbt start-up are shared.
`client_script()` is that executable: it hands its arguments, environment, working directory and
standard streams to this server over a Unix socket, and exits with dbt's exit code.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import struct
import sys
import traceback

PRELOADED = (
    "dbt.cli.main",
    "dbt.adapters.factory",
    "dbt.adapters.snowflake",
    "dbt.task.build",
    "dbt.task.freshness",
)
_CLIENT = """#!{python} -SE
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({socket!r})
request = {{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}
payload = json.dumps(request).encode()
socket.send_fds(s, [struct.pack("!I", len(payload))], [0, 1, 2])
s.sendall(payload)
answer = s.recv(4)
sys.exit(struct.unpack("!i", answer)[0] if len(answer) == 4 else 2)
"""


def client_script(python: str, socket_path: str) -> str:
    """The stand-in's `dbt`: a few lines of the standard library, so it starts in milliseconds."""
    return _CLIENT.format(python=python, socket=socket_path)


def _run(request: dict, fds: list[int]) -> int:
    """In the forked child: dbt's command line, as the `dbt` executable would run it."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["dbt", *request["args"]]
    from dbt.cli.main import cli

    try:
        cli()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the dbt client hung up before sending its request")
        data += chunk
    return data


def serve(socket_path: str) -> None:
    # What every dbt call imports: the CLI, the Snowflake adapter, the tasks Cosmos runs. Only
    # imports: a dbt call leaves threads behind, and a fork of a process with threads can hang.
    for module in PRELOADED:
        importlib.import_module(module)

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        header, fds, _, _ = socket.recv_fds(conn, 4, 3)
        message = _read(conn, struct.unpack("!I", header)[0])
        pid = os.fork()
        if pid == 0:
            server.close()
            code = _run(json.loads(message), fds)
            conn.send(struct.pack("!i", code))
            os._exit(code)
        conn.close()
        for fd in fds:
            os.close(fd)
        # Reap the calls that ended.
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break


if __name__ == "__main__":
    serve(sys.argv[1])
