"""Long-running units start for real: up when their health answers or they keep running, then stopped."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from rehearsal import hosts
from rehearsal.hosts import Health, HostRun
from rehearsal.report import Report, Status, Step
from rehearsal.sandbox import Sandbox

# Serves HTTP on the port its unit's environment names; prints its instance (%i) first.
SERVER = (
    "import http.server as h, os, sys; print('instance', sys.argv[1], flush=True); "
    "h.HTTPServer(('127.0.0.1', int(os.environ['DEMO_PORT'])), h.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)
CRASH = "import sys; print('loading the app', flush=True); sys.exit(3)"
TRACEBACK = (
    "import time, traceback; exec('try:\\n 1 / 0\\nexcept ZeroDivisionError: traceback.print_exc()'); "
    "time.sleep(600)"
)
# A child that outlives nothing: it must go with its unit's process group.
FORKS = (
    "import subprocess, time; p = subprocess.Popen(['sleep', '600']); "
    "print('child', p.pid, flush=True); time.sleep(600)"
)


def _unit(exec_start: str, environment: str = "") -> str:
    return f"[Service]\n{environment}ExecStart={exec_start}\n"


def _py(code: str, *args: str) -> str:
    return shlex.join([sys.executable, "-c", code, *args])


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostRun:
    monkeypatch.setattr(hosts, "SETTLE_S", 1.0)
    monkeypatch.setattr(hosts, "UP_TIMEOUT_S", 30.0)
    files = {
        "demo@.service": _unit(_py(SERVER, "%i"), "Environment=DEMO_PORT=1\n"),
        "crash.service": _unit(_py(CRASH)),
        "quiet.service": _unit(_py("import time; time.sleep(600)")),
        "traceback.service": _unit(_py(TRACEBACK)),
        "forks.service": _unit(_py(FORKS)),
    }
    written = [{"path": f"/etc/systemd/system/{n}", "content": t} for n, t in files.items()]
    user_data = "#cloud-config\n" + yaml.safe_dump({"write_files": written})
    none = cast(Any, None)
    run = HostRun("demo", none, none, none, Report("test"), tmp_path)
    run.box = Sandbox.boot(tmp_path, user_data, {})
    run.health = {"demo@web.service": Health("/", port_env="DEMO_PORT")}
    return run


def _only(host: HostRun) -> Step:
    (step,) = host.report.steps
    return step


def test_a_template_instance_is_up_when_its_health_answers_on_a_moved_port(host: HostRun) -> None:
    assert host.run_unit("demo@web", "systemctl enable --now demo@web")
    step = _only(host)
    assert step.status is Status.OK, step
    assert step.detail.startswith("up, health 200 in "), step.detail
    # The rendered port 1 is moved through the variable the unit reads, and the report says so.
    assert "DEMO_PORT=" in step.detail and "in place of 1" in step.detail
    assert host.box is not None
    assert "instance web" in host.box.path("/.rehearsal/units/demo@web.service.log").read_text()


def test_a_unit_that_exits_fails_with_its_last_output_and_the_unit_as_the_wire(
    host: HostRun,
) -> None:
    assert not host.run_unit("crash.service", "systemctl enable --now crash.service")
    step = _only(host)
    assert step.status is Status.FAILED
    assert "ExecStart exited with 3" in step.detail and "loading the app" in step.detail
    assert step.wire == "crash.service"


def test_a_unit_without_health_passes_when_it_keeps_running_without_a_traceback(
    host: HostRun,
) -> None:
    # Started together: one failing does not hide the other's verdict.
    assert not host.start_units(["quiet", "traceback"], lambda unit: f"start {unit}")
    quiet, traceback = host.report.steps
    assert quiet.status is Status.OK and quiet.detail.startswith("running after "), quiet
    assert traceback.status is Status.FAILED and "ZeroDivisionError" in traceback.detail


def test_a_unit_that_never_answers_fails_within_the_bound(
    host: HostRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "UP_TIMEOUT_S", 2.0)
    host.health["quiet.service"] = Health("/health", port_env="DEMO_PORT")
    assert not host.run_unit("quiet.service", "start quiet")
    step = _only(host)
    assert step.status is Status.FAILED and "no 200 from /health" in step.detail


def test_the_whole_process_group_is_stopped(host: HostRun) -> None:
    assert host.run_unit("forks.service", "start forks")
    assert host.box is not None
    log = host.box.path("/.rehearsal/units/forks.service.log").read_text()
    child = int(log.split("child ")[1].split()[0])
    # The group was sent SIGKILL when its unit stopped; the kernel ends it a moment later.
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running, or stopped: not gone and not a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
