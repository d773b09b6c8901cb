"""Boots a host from its rendered user data in a sandbox, with the credentials of its own role."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.cloud_init import CLOUDWATCH_AGENT_CTL
from infra.mockrun import ProgramRun, Recorded
from rehearsal.apply import INSTANCE, INSTANCE_PROFILE, Applied
from rehearsal.emulator import Emulator
from rehearsal.report import Report
from rehearsal.sandbox import CommandFailed, Sandbox, read_env_file
from rehearsal.wires import Wire

# (pattern in a failed command's output, wire, what is behind it)
Hint = tuple[str, str, str]

NOT_REHEARSED_KEYS = {
    "package_update": "package installs need the host's own repositories",
    "packages": "package installs need the host's own repositories; this machine's tools stand in",
    "users": "system users need a real machine; commands run as the rehearsal's user",
    "swap": "a swap file needs a real machine",
}


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
        assert self.box is not None
        try:
            self.box.run_unit(unit)
        except CommandFailed as err:
            wire, behind = self.diagnose(f"{err.what}\n{err.output}")
            self.failed(step, _summary(err), wire, behind)
            return False
        except Exception as err:
            self.failed(step, f"{type(err).__name__}: {err}", unit, unit)
            return False
        self.ran.add(unit)
        kind = self.box.unit(unit)
        if unit.endswith(".service") and kind.type != "oneshot":
            self.ok(step, "ExecStartPre ran; the long-running ExecStart is not rehearsed")
        else:
            self.ok(step)
        return self.follow_systemctl()

    def follow_systemctl(self) -> bool:
        """Units the scripts asked systemctl to start: run them now, once."""
        assert self.box is not None
        calls = self.box.systemctl_calls()
        self.box.systemctl_log.unlink(missing_ok=True)
        healthy = True
        for call in calls:
            words = [w for w in call if not w.startswith("--")]
            if not healthy:
                self.skipped(
                    f"→ systemctl {' '.join(words)}", "not reached: an earlier step failed"
                )
            elif words[:1] == ["start"]:
                for unit in words[1:]:
                    healthy &= self.run_unit(unit, f"→ systemctl start {unit}")
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
                    self.failed(text, _summary(err), text, "the user data's runcmd")
                    healthy = False
        return healthy

    def diagnose(self, output: str) -> tuple[str, str]:
        for pattern, wire, behind in self.hints:
            if re.search(pattern, output):
                return wire, behind
        unit = output.split(":", 1)[0]
        return unit, f"/etc/systemd/system/{unit} and the script it runs"


def _summary(err: CommandFailed) -> str:
    lines = [x for x in err.output.strip().splitlines() if x.strip()]
    return f"exit {err.result.returncode}: " + " | ".join(lines[-3:])


def written_files(user_data: str) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(user_data)
    return {f["path"]: f["content"] for f in doc.get("write_files", [])}
