"""The rehearsal's result: one table per host, each step rehearsed (✓), failed (✗) or not rehearsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(Enum):
    OK = "✓"
    FAILED = "✗"
    SKIPPED = "not rehearsed"


@dataclass(frozen=True)
class Step:
    host: str
    name: str
    status: Status
    detail: str = ""
    # For a failure: the wire that broke, and the resource or stack output behind it.
    wire: str = ""
    behind: str = ""


@dataclass
class Report:
    stack: str
    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def ok(self, host: str, name: str, detail: str = "") -> Step:
        return self.add(Step(host, name, Status.OK, detail))

    def skipped(self, host: str, name: str, why: str) -> Step:
        return self.add(Step(host, name, Status.SKIPPED, why))

    def failed(self, host: str, name: str, detail: str, wire: str, behind: str) -> Step:
        return self.add(Step(host, name, Status.FAILED, detail, wire, behind))

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Step]:
        return [s for s in self.steps if s.status is Status.FAILED]

    def hosts(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            if step.host not in seen:
                seen.append(step.host)
        return seen

    def render(self) -> str:
        """Plain-text tables, one per host, then a line per broken wire."""
        out: list[str] = [f"Rehearsal of stack {self.stack}"]
        for host in self.hosts():
            rows = [s for s in self.steps if s.host == host]
            width = max(len(s.name) for s in rows)
            out += ["", f"{host}", f"  {'step'.ljust(width)}  result"]
            for s in rows:
                mark = s.status.value
                detail = f"  {s.detail}" if s.detail else ""
                out.append(f"  {s.name.ljust(width)}  {mark}{detail}")
        out.append("")
        if self.failures:
            out.append(f"{len(self.failures)} broken wire(s):")
            for s in self.failures:
                out.append(f"  ✗ {s.host} / {s.name}: wire {s.wire} (behind it: {s.behind})")
                out.append(f"    {s.detail}")
        else:
            rehearsed = sum(s.status is Status.OK for s in self.steps)
            out.append(f"All {rehearsed} rehearsed steps passed.")
        return "\n".join(out)
