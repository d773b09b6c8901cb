"""A host's root file system under a sandbox folder, and its units run from there.

The rendered user data is parsed as cloud-init would; its `write_files` land under the sandbox
root, which stands in for `/`. Paths of the host's own tree (`/etc/mdp`, `/opt/mdp`, ...) are
rewritten to the sandbox in what is written, so the scripts run unchanged otherwise. `systemctl`
is a stand-in that records what the scripts ask of it; the rehearsal then runs the units' commands.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The host's own tree: everything the user data writes or the scripts create lives under these.
HOST_PATHS = (
    "/etc/mdp",
    "/etc/systemd/system",
    "/etc/ssh/sshd_config.d",
    "/opt/mdp",
    "/usr/local/bin",
    "/usr/local/lib/mdp",
    "/var/lib/mdp-dashboard",
    "/var/lib/mdp",
    "/var/lib/airflow",
    "/var/lib/pgsql",
    "/run/mdp",
    "/usr/bin/uv",
    "/usr/bin/python3.11",
)
_HOST_PATH = re.compile(
    r"(?<![\w.-])("
    + "|".join(re.escape(p) for p in sorted(HOST_PATHS, key=len, reverse=True))
    + r")(?![\w-])"
)
# The commands the hosts' scripts call that come from the image's packages.
HOST_TOOLS = ("aws", "jq", "unzip", "bash")


def missing_tools() -> list[str]:
    """The host tools this machine lacks (`make system-deps` installs them)."""
    return [tool for tool in HOST_TOOLS if shutil.which(tool) is None]


# What a host process inherits from this machine: nothing of ours, no AWS credentials.
_DROP_ENV = ("AWS_", "AIRFLOW", "MDP_", "PG", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT")
_COMMAND_TIMEOUT_S = 900


class CommandFailed(Exception):
    def __init__(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        self.what = what
        self.result = result
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-6:])
        super().__init__(f"{what} exited with {result.returncode}: {tail}")

    @property
    def output(self) -> str:
        return f"{self.result.stdout}\n{self.result.stderr}"


@dataclass(frozen=True)
class Unit:
    """The parts of a systemd unit the rehearsal runs: its commands and their environment."""

    name: str
    exec_start_pre: tuple[str, ...]
    exec_start: tuple[str, ...]
    environment_files: tuple[str, ...]
    environment: dict[str, str]
    working_directory: str
    user: str
    unit: str  # for a timer: the service it starts
    type: str = "simple"
    state_directories: tuple[str, ...] = ()
    runtime_directories: tuple[str, ...] = ()

    @property
    def long_running(self) -> bool:
        """A service whose ExecStart keeps running (systemd's `simple`, `exec`, `notify`)."""
        return self.name.endswith(".service") and self.type != "oneshot"

    @classmethod
    def parse(cls, name: str, text: str) -> Unit:
        values: dict[str, list[str]] = {}
        instance = name.rsplit(".", 1)[0].partition("@")[2]
        if instance:
            # A template's instance: systemd expands %i (and %I) in every setting.
            text = text.replace("%%", "\0").replace("%i", instance).replace("%I", instance)
            text = text.replace("\0", "%")
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
        environment: dict[str, str] = {}
        for entry in values.get("Environment", []):
            for pair in shlex.split(entry):
                k, _, v = pair.partition("=")
                environment[k] = v
        default_unit = name.rsplit(".", 1)[0] + ".service"
        return cls(
            name=name,
            exec_start_pre=tuple(values.get("ExecStartPre", [])),
            exec_start=tuple(values.get("ExecStart", [])),
            environment_files=tuple(values.get("EnvironmentFile", [])),
            environment=environment,
            working_directory=(values.get("WorkingDirectory") or [""])[0],
            user=(values.get("User") or ["root"])[0],
            unit=(values.get("Unit") or [default_unit])[0],
            type=(values.get("Type") or ["simple"])[0],
            state_directories=tuple(" ".join(values.get("StateDirectory", [])).split()),
            runtime_directories=tuple(" ".join(values.get("RuntimeDirectory", [])).split()),
        )


def unit_file_name(name: str) -> str:
    """The unit as systemd names it: `airflow@scheduler` is `airflow@scheduler.service`."""
    return name if name.endswith((".service", ".timer")) else f"{name}.service"


def read_env_file(text: str) -> dict[str, str]:
    """`KEY=value` lines as systemd and `source` read them (values may be shell-quoted)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value)
        env[key.strip()] = parts[0] if parts else ""
    return env


@dataclass
class Sandbox:
    """One host's stand-in root: its files, its stand-in commands, and how to run its units."""

    root: Path
    host_env: dict[str, str]
    cloud_config: dict[str, Any] = field(default_factory=dict)
    rendered: dict[str, str] = field(default_factory=dict)

    @classmethod
    def boot(cls, root: Path, user_data: str, host_env: Mapping[str, str]) -> Sandbox:
        if not user_data.startswith("#cloud-config\n"):
            raise ValueError("the user data is not a cloud-config document")
        doc = yaml.safe_load(user_data)
        box = cls(root=root, host_env=dict(host_env), cloud_config=doc)
        # A root that exists already is the same machine booting again: its /opt/mdp stays.
        box.systemctl_log.unlink(missing_ok=True)
        box._stand_ins()
        for entry in doc.get("write_files", []):
            box.rendered[entry["path"]] = entry["content"]
            box.write(
                entry["path"], entry["content"], int(str(entry.get("permissions", "0644")), 8)
            )
        return box

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def jail(self, text: str) -> str:
        """`text` with the host's own paths moved under the sandbox root."""
        return _HOST_PATH.sub(lambda m: str(self.path(m.group(1))), text)

    def unjail(self, text: str) -> str:
        """`text` with the sandbox root taken off its paths, as the host would show them."""
        return text.replace(str(self.root), "")

    def write(self, host_path: str, content: str, mode: int = 0o644) -> None:
        target = self.path(host_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.jail(content))
        target.chmod(mode)

    def env_file(self, host_path: str) -> dict[str, str]:
        """An environment file as written under the sandbox (paths already in the sandbox)."""
        return read_env_file(self.path(host_path).read_text())

    def set_env_values(self, host_path: str, values: Mapping[str, str]) -> None:
        """Rewrite only these keys of an environment file; every other line stays as rendered."""
        target = self.path(host_path)
        lines = []
        for line in target.read_text().splitlines():
            key = line.partition("=")[0]
            if key in values and not line.startswith("#"):
                line = f"{key}={shlex.quote(values[key])}"
            lines.append(line)
        target.write_text("\n".join(lines) + "\n")

    @property
    def bin(self) -> Path:
        return self.root / ".rehearsal" / "bin"

    @property
    def systemctl_log(self) -> Path:
        return self.root / ".rehearsal" / "systemctl.log"

    def _stand_ins(self) -> None:
        """What package installs would put on the host: uv, python3.11; and a recording systemctl."""
        self.bin.mkdir(parents=True, exist_ok=True)
        systemctl = self.bin / "systemctl"
        systemctl.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(self.systemctl_log))}\n')
        systemctl.chmod(0o755)
        # `uv run` names its own binary in UV; on a fresh clone uv may be off PATH.
        uv = os.environ.get("UV") or shutil.which("uv")
        python = shutil.which("python3.11") or getattr(sys, "_base_executable", sys.executable)
        for host_path, real in (("/usr/local/bin/uv", uv), ("/usr/bin/python3.11", python)):
            if real:
                link = self.path(host_path)
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.exists():
                    link.symlink_to(real)

    def systemctl_calls(self) -> list[list[str]]:
        if not self.systemctl_log.exists():
            return []
        return [line.split() for line in self.systemctl_log.read_text().splitlines() if line]

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_ENV)}
        env["PATH"] = f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update(self.host_env)
        return env

    def unit_path(self, name: str) -> Path | None:
        """The unit's file under the sandbox; an instance `a@b.service` reads `a@.service`."""
        name = unit_file_name(name)
        stem, _, suffix = name.rpartition(".")
        candidates = [name]
        if "@" in stem:
            candidates.append(f"{stem.partition('@')[0]}@.{suffix}")
        for candidate in candidates:
            path = self.path(f"/etc/systemd/system/{candidate}")
            if path.exists():
                return path
        return None

    def unit(self, name: str) -> Unit:
        path = self.unit_path(name)
        if path is None:
            raise FileNotFoundError(
                f"no unit file for {name} under {self.path('/etc/systemd/system')}"
            )
        return Unit.parse(unit_file_name(name), path.read_text())

    def stand_in(self, command: str, script: str) -> None:
        """A command of the host that cannot run here, replaced on the sandbox's PATH by `script`."""
        target = self.bin / command
        target.write_text(script)
        target.chmod(0o755)

    @property
    def stand_ins_log(self) -> Path:
        """Where stand-ins record each call they did not carry out: `command<TAB>arguments`."""
        return self.root / ".rehearsal" / "stand-ins.log"

    def stand_in_calls(self) -> list[tuple[str, str]]:
        if not self.stand_ins_log.exists():
            return []
        lines = self.stand_ins_log.read_text().splitlines()
        return [(line.partition("\t")[0], line.partition("\t")[2]) for line in lines if line]

    def run(
        self,
        argv: list[str],
        what: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            env=dict(env) if env is not None else self.base_env(),
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise CommandFailed(what, result)
        return result

    def unit_env(self, unit: Unit, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The unit's environment as systemd builds it: EnvironmentFile, Environment, then `extra_env`."""
        env = self.base_env()
        for file in unit.environment_files:
            optional = file.startswith("-")
            path = Path(file.lstrip("-"))
            if optional and not path.exists():
                continue
            env.update(read_env_file(path.read_text()))
        env.update(unit.environment)
        env.update(extra_env or {})
        return env

    def _cwd(self, unit: Unit) -> Path:
        return Path(unit.working_directory) if unit.working_directory else self.root

    def run_unit(self, name: str, extra_env: Mapping[str, str] | None = None) -> list[str]:
        """Run a unit's ExecStartPre and ExecStart lines (a timer: its service's) as systemd would.

        A long-running service's ExecStart would never return: only its ExecStartPre lines run
        here; `start_service` runs its ExecStart in the background.
        """
        unit = self.unit(name)
        if unit.name.endswith(".timer"):
            return self.run_unit(unit.unit, extra_env)
        env = self.unit_env(unit, extra_env)
        # systemd creates these before the unit starts.
        for directory in unit.state_directories:
            self.path(f"/var/lib/{directory}").mkdir(parents=True, exist_ok=True)
        for directory in unit.runtime_directories:
            self.path(f"/run/{directory}").mkdir(parents=True, exist_ok=True)
        outputs: list[str] = []
        commands = unit.exec_start_pre
        if not unit.long_running:
            commands = (*unit.exec_start_pre, *unit.exec_start)
        for command in commands:
            argv = shlex.split(command.lstrip("-@+!"))
            outputs.append(
                self.run(argv, f"{name}: {command}", env=env, cwd=self._cwd(unit)).stdout
            )
        return outputs

    def exec_start(self, name: str) -> list[str]:
        """A long-running unit's ExecStart, split as systemd splits it."""
        unit = self.unit(name)
        if len(unit.exec_start) != 1:
            raise ValueError(
                f"{name} has {len(unit.exec_start)} ExecStart lines; a service has one"
            )
        return shlex.split(unit.exec_start[0].lstrip("-@+!"))

    def start_service(
        self,
        name: str,
        argv: list[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> Service:
        """A long-running unit's ExecStart (or `argv`), in the background in its own process group."""
        unit = self.unit(name)
        log = self.root / ".rehearsal" / "units" / f"{unit.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv or self.exec_start(name),
                env=self.unit_env(unit, extra_env),
                cwd=self._cwd(unit),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Service(unit.name, process, log)


@dataclass
class Service:
    """A long-running unit's ExecStart while it runs: its process group and its output."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 3) -> str:
        kept = [x.strip() for x in self.output().splitlines() if x.strip()]
        return " | ".join(kept[-lines:]) or "no output"

    def terminate(self) -> None:
        """SIGTERM to the whole group, as systemd's stop does (KillMode=control-group)."""
        self._signal(signal.SIGTERM)

    def stop(self, timeout: float) -> None:
        """Terminate the group, wait for it, and kill what is left after `timeout` seconds."""
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=timeout)
        # Children that outlive the main process (workers) go with it, as systemd's do.
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)
