"""Boots a host from its rendered user data in a sandbox, with the credentials of its own role."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.cloud_init import CLOUDWATCH_AGENT_CTL
from infra.mockrun import ProgramRun, Recorded
from rehearsal.apply import INSTANCE, INSTANCE_PROFILE, Applied
from rehearsal.emulator import Emulator, free_port
from rehearsal.report import Report
from rehearsal.sandbox import CommandFailed, Sandbox, Service, read_env_file, unit_file_name
from rehearsal.wires import Wire

# (pattern in a failed command's output, wire, what is behind it)
Hint = tuple[str, str, str]

NOT_REHEARSED_KEYS = {
    "package_update": "package installs need the host's own repositories",
    "packages": "package installs need the host's own repositories; this machine's tools stand in",
    "users": "system users need a real machine; commands run as the rehearsal's user",
    "swap": "a swap file needs a real machine",
}

# A long-running unit must be up within this long of its start, or it fails.
UP_TIMEOUT_S = 120.0
# A unit with no health endpoint passes when it still runs this long after its start (and at
# least until the units started with it have answered), with no traceback in its output.
SETTLE_S = 10.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Health:
    """How a long-running unit shows it is up: an HTTP path answering 200 on its port, or, with
    no path, still running after the settle time with no traceback in its output."""

    path: str = ""
    # Its port: from this environment variable the unit reads, or else this ExecStart option.
    # Either is moved to a free port, since the rendered one may be taken on a shared machine.
    port_env: str = ""
    port_option: str = ""


@dataclass
class _Started:
    service: Service
    health: Health
    port: int
    moved: str
    result: tuple[bool, str] | None = None


@dataclass
class HostRun:
    """What booting one host needs: the program run, the emulator, the report to fill."""

    name: str
    run: ProgramRun
    applied: Applied
    emulator: Emulator
    report: Report
    root: Path
    hints: list[Hint] = field(default_factory=list)
    ran: set[str] = field(default_factory=set)
    box: Sandbox | None = None
    # How each long-running unit shows it is up (by unit name); any other: `Health()`.
    health: dict[str, Health] = field(default_factory=dict)
    # Units of the image's packages (no file in the user data), and why they are not rehearsed.
    package_units: dict[str, str] = field(default_factory=dict)
    # False: long-running units run their ExecStartPre only (a rehearsal aimed at one wire).
    services: bool = True

    @property
    def instance(self) -> Recorded:
        return self.run.one(INSTANCE, f"{self.name}-instance")

    @property
    def user_data(self) -> str:
        return str(self.instance.plain["userData"])

    @property
    def policy_name(self) -> str:
        return f"{self.name}-policy"

    def role_arn(self) -> str:
        profile_name = self.instance.plain["iamInstanceProfile"]
        profiles = [
            r
            for r in self.run.of_type(INSTANCE_PROFILE)
            if str(r.outputs.get("name") or r.name) == profile_name
        ]
        if not profiles:
            raise LookupError(f"instance profile {profile_name} is not declared")
        role = profiles[0].plain["role"]
        return f"arn:aws:iam::{self.emulator.account}:role/{role}"

    def ok(self, step: str, detail: str = "") -> None:
        self.report.ok(self.name, step, detail)

    def skipped(self, step: str, why: str) -> None:
        self.report.skipped(self.name, step, why)

    def failed(self, step: str, detail: str, wire: str, behind: str) -> None:
        self.report.failed(self.name, step, detail, wire, behind)

    def check_wires(self, wires: Sequence[Wire]) -> bool:
        """Each wired environment value equals the stack output it comes from."""
        files: dict[str, dict[str, str]] = {}
        doc_files = written_files(self.user_data)
        broken = 0
        absent = sorted({w.file for w in wires if w.file not in doc_files})
        for file in absent:
            self.skipped(
                f"wires into {file}", "the stack's config writes no such file on this host"
            )
        for wire in wires:
            if wire.file not in doc_files:
                continue
            env = files.setdefault(wire.file, read_env_file(doc_files[wire.file]))
            if wire.variable not in env:
                broken += 1
                self.failed(
                    f"wire {wire.variable}",
                    f"{wire.file} has no {wire.variable}",
                    wire.label,
                    f"the user data of {self.instance.name}",
                )
            elif wire.output not in self.run.outputs:
                broken += 1
                self.failed(
                    f"wire {wire.variable}",
                    f"the stack exports no output {wire.output!r}, so nothing an operator reads "
                    f"says what {wire.variable} holds; outputs are: "
                    + ", ".join(sorted(self.run.outputs)),
                    wire.label,
                    f"stack output {wire.output}",
                )
            elif not wire.holds(env[wire.variable], self.run.outputs[wire.output]):
                broken += 1
                self.failed(
                    f"wire {wire.variable}",
                    f"{wire.variable}={env[wire.variable]} but output {wire.output} is "
                    f"{self.run.outputs[wire.output]}",
                    wire.label,
                    f"stack output {wire.output}",
                )
        if not broken:
            present = [w for w in wires if w.file in doc_files]
            self.ok(
                "wires: env files ← stack outputs",
                ", ".join(f"{w.variable}←{w.output}" for w in present),
            )
        return broken == 0

    def boot(self) -> Sandbox | None:
        """Parse the user data, assume the host's role, write its files under the sandbox."""
        try:
            role_arn = self.role_arn()
            credentials = self.emulator.assume(role_arn, f"i-{self.name}")
        except Exception as err:
            self.failed(
                "instance profile: assume own role as EC2",
                str(err),
                f"{self.instance.name} iamInstanceProfile → role trust policy",
                f"{self.name}-role",
            )
            return None
        self.ok("instance profile: assume own role as EC2", role_arn.rsplit("/", 1)[-1])
        resolved = self.applied.resolve(self.user_data)
        self.box = Sandbox.boot(self.root, resolved, self.emulator.host_env(credentials))
        self.ok(
            "cloud-config: write_files under the sandbox root",
            f"{len(self.box.rendered)} files",
        )
        for key, why in NOT_REHEARSED_KEYS.items():
            if key in self.box.cloud_config:
                self.skipped(f"cloud-config {key}", why)
        return self.box

    def run_unit(self, unit: str, step: str) -> bool:
        return self.start_units([unit], lambda _: step)

    def start_units(self, units: Sequence[str], step: Callable[[str], str]) -> bool:
        """Start units as systemd would: ExecStartPre; a one-shot's ExecStart; a long-running
        ExecStart in the background, all of them at once, until each is up, then stopped."""
        assert self.box is not None
        healthy = True
        started: list[_Started] = []
        try:
            for name in units:
                unit = unit_file_name(name)
                if self.box.unit_path(unit) is None:
                    self.skipped(
                        step(name),
                        self.package_units.get(
                            name.removesuffix(".service"),
                            "a unit of the image's packages, not in the user data",
                        ),
                    )
                    continue
                try:
                    self.box.run_unit(unit)
                    kind = self.box.unit(unit)
                    if kind.long_running and self.services:
                        started.append(self._start_service(unit))
                except CommandFailed as err:
                    wire, behind = self.diagnose(f"{err.what}\n{err.output}")
                    self.failed(step(name), summary(err), wire, behind)
                    healthy = False
                    continue
                except Exception as err:
                    self.failed(step(name), f"{type(err).__name__}: {err}", unit, unit)
                    healthy = False
                    continue
                self.ran.add(unit)
                if kind.long_running and not self.services:
                    self.ok(step(name), "ExecStartPre ran; ExecStart not rehearsed (services off)")
                elif not kind.long_running:
                    self.ok(step(name))
            self._watch(started)
        finally:
            for each in started:
                each.service.terminate()
            for each in started:
                each.service.stop(STOP_TIMEOUT_S)
        for each in started:
            assert each.result is not None
            ok, detail = each.result
            name = next(n for n in units if unit_file_name(n) == each.service.name)
            if ok:
                self.ok(step(name), detail)
            else:
                healthy = False
                wire, behind = self.diagnose(f"{each.service.name}: ExecStart\n{detail}")
                self.failed(step(name), detail, wire, behind)
        return self.follow_systemctl() and healthy

    def _start_service(self, unit: str) -> _Started:
        assert self.box is not None
        health = self.health.get(unit, Health())
        argv = self.box.exec_start(unit)
        env: dict[str, str] = {}
        port, moved = 0, ""
        if health.port_env:
            port = free_port()
            rendered = self.box.unit_env(self.box.unit(unit)).get(health.port_env, "unset")
            env[health.port_env] = str(port)
            moved = f"{health.port_env}={port} in place of {rendered}"
        elif health.port_option:
            at = argv.index(health.port_option) + 1
            port = free_port()
            moved = f"{health.port_option} {port} in place of {argv[at]}"
            argv[at] = str(port)
        if moved:
            moved += " (a fixed port may be taken on a shared machine)"
        return _Started(self.box.start_service(unit, argv, env), health, port, moved)

    def _watch(self, started: list[_Started]) -> None:
        """Wait, at most UP_TIMEOUT_S, until each service is up or has failed."""
        pending = list(started)
        while pending:
            for each in list(pending):
                each.result = _check(each, settled=not any(p.health.path for p in pending))
                if each.result is not None:
                    pending.remove(each)
            if pending:
                time.sleep(0.5)

    def follow_systemctl(self) -> bool:
        """Units the scripts asked systemctl to start: run them now, once."""
        assert self.box is not None
        calls = self.box.systemctl_calls()
        self.box.systemctl_log.unlink(missing_ok=True)
        healthy = True
        for call in calls:
            words = [w for w in call if not w.startswith("--")]
            if not healthy:
                self.skipped(f"→ systemctl {' '.join(call)}", "not reached: an earlier step failed")
            elif words[:1] == ["start"] or (words[:1] == ["enable"] and "--now" in call):
                verb = " ".join(w for w in call if w in ("start", "enable", "--now"))
                healthy &= self.start_units(words[1:], _named(f"→ systemctl {verb}"))
            elif words[:1] == ["try-restart"]:
                self.skipped(
                    f"→ systemctl try-restart {' '.join(words[1:])}",
                    "no unit is running yet at first boot",
                )
        return healthy

    def runcmd(self, special: dict[str, Callable[[list[str]], bool]] | None = None) -> bool:
        """The user data's runcmd, in order; systemd units run their commands."""
        assert self.box is not None
        healthy = True
        for argv in self.box.cloud_config.get("runcmd", []):
            argv = [str(a) for a in argv]
            text = " ".join(argv)
            if not healthy:
                # cloud-init would go on, but what follows depends on what failed.
                self.skipped(text, "not reached: an earlier step failed")
            elif special and argv[0] in special:
                healthy &= special[argv[0]](argv)
            elif argv[:3] == ["python3.11", "-m", "pip"]:
                self.skipped(text, "uv on this machine stands in for the pip install")
            elif argv[0] == CLOUDWATCH_AGENT_CTL:
                self.skipped(
                    text,
                    "the CloudWatch agent is the image's package, absent here; its config is written",
                )
            elif argv[0] == "curl":
                self.skipped(text, "no internet: the RDS CA is not downloaded (TLS not rehearsed)")
            elif argv[:2] == ["systemctl", "daemon-reload"]:
                self.skipped(text, "no systemd in the sandbox: units are read from their files")
            elif argv[:2] == ["systemctl", "restart"]:
                self.skipped(text, "system services of the image (sshd) are not rehearsed")
            elif argv[0] == "systemctl":
                unit = argv[-1]
                if unit.endswith(".timer"):
                    service = self.box.unit(unit).unit
                    if service in self.ran:
                        self.ok(text, f"{service} ran above; the schedule is not rehearsed")
                        continue
                    healthy &= self.run_unit(unit, f"{text} (runs {service} once)")
                else:
                    healthy &= self.run_unit(unit, text)
            else:
                try:
                    self.box.run([self.box.jail(a) for a in argv], text)
                    self.ok(text)
                except CommandFailed as err:
                    self.failed(text, summary(err), text, "the user data's runcmd")
                    healthy = False
        return healthy

    def diagnose(self, output: str) -> tuple[str, str]:
        for pattern, wire, behind in self.hints:
            if re.search(pattern, output):
                return wire, behind
        unit = output.split(":", 1)[0]
        return unit, f"/etc/systemd/system/{unit} and the script it runs"


def _named(prefix: str) -> Callable[[str], str]:
    """The report's step for each unit of one systemctl call."""
    return lambda unit: f"{prefix} {unit}"


def _check(each: _Started, settled: bool) -> tuple[bool, str] | None:
    """The service's verdict, or None while it may still come up."""
    service, health = each.service, each.health
    elapsed = service.elapsed
    moved = f"; {each.moved}" if each.moved else ""
    if not service.running:
        return False, (
            f"ExecStart exited with {service.process.returncode} after {elapsed:.1f} s: "
            + service.tail()
        )
    if health.path:
        answer = _get(each.port, health.path)
        if answer is not None and answer[0] == 200:
            return True, f"up, health 200 in {elapsed:.1f} s{_components(answer[1])}{moved}"
    elif elapsed >= SETTLE_S and (settled or elapsed > UP_TIMEOUT_S):
        if "Traceback (most recent call last)" in service.output():
            return False, f"a traceback in its output after {elapsed:.1f} s: " + service.tail()
        return True, f"running after {elapsed:.1f} s, no traceback in its output{moved}"
    if elapsed > UP_TIMEOUT_S:
        what = f"no 200 from {health.path} on port {each.port}" if health.path else "not settled"
        return False, f"{what} within {UP_TIMEOUT_S:.0f} s: " + service.tail()
    return None


# Straight to loopback: a proxy from the environment (HTTP_PROXY) must not carry the probe.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(port: int, path: str) -> tuple[int, str] | None:
    try:
        with _LOOPBACK.open(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (OSError, ValueError):
        return None


def _components(body: str) -> str:
    """Airflow's health answer, condensed: each component and its status."""
    try:
        parts = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(parts, dict):
        return ""
    states = [
        f"{name} {part['status']}"
        for name, part in parts.items()
        if isinstance(part, dict) and part.get("status")
    ]
    return f" ({', '.join(states)})" if states else ""


def summary(err: CommandFailed) -> str:
    lines = [x for x in err.output.strip().splitlines() if x.strip()]
    return f"exit {err.result.returncode}: " + " | ".join(lines[-3:])


def written_files(user_data: str) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(user_data)
    return {f["path"]: f["content"] for f in doc.get("write_files", [])}
