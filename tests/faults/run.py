"""Plants each fault in a temporary copy of the repository and requires its test to fail.

    python -m tests.faults.run            # the faults CI runs
    python -m tests.faults.run --all      # every fault, the slow ones too
    python -m tests.faults.run --only pii-masking --keep
    python -m tests.faults.run --unplanted  # each test must pass with no fault planted

Exit code 0 only when every planted fault was caught: its test ran and failed (pytest exit
code 1). A test that passes over a fault, a fault that no longer applies (its text is not in
the file exactly once) or a test run that errors (collection, usage) fails the suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tests.faults.catalog import FAULTS, Fault

REPO = Path(__file__).resolve().parents[2]
# Environments are shared with the copy, not copied: they are large and read-only here.
LINKED = (".venv", ".venv-policy")
TIMEOUT_SECONDS = 1200


@dataclass
class Outcome:
    fault: Fault
    verdict: str  # caught | MISSED | NOT PLANTED | ERROR; unplanted: passed | FAILED
    seconds: float
    detail: str = ""


def _repo_files() -> list[str]:
    """Tracked and new (not ignored) files: the working tree as a commit would hold it."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return [f for f in out.decode().split("\0") if f and (REPO / f).is_file()]


def copy_repo(dest: Path, files: list[str]) -> None:
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    for name in LINKED:
        if (REPO / name).exists():
            (dest / name).symlink_to(REPO / name)


def plant(copy: Path, fault: Fault, write: bool = True) -> None:
    path = copy / fault.path
    text = path.read_text()
    found = text.count(fault.old)
    if found != 1:
        raise LookupError(f"{fault.path}: the fault's text occurs {found} times, not once")
    if write:
        path.write_text(text.replace(fault.old, fault.new))


def run_fault(fault: Fault, files: list[str], keep: bool, planted: bool = True) -> Outcome:
    started = time.monotonic()
    copy = Path(tempfile.mkdtemp(prefix=f"mdp-fault-{fault.name}-"))
    try:
        copy_repo(copy, files)
        try:
            plant(copy, fault, write=planted)
        except LookupError as err:
            return Outcome(fault, "NOT PLANTED", time.monotonic() - started, str(err))
        env = {
            **os.environ,
            **fault.env,
            "PYTHONPATH": str(copy),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop("MDP_HOME", None)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *fault.tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        seconds = time.monotonic() - started
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        if not planted:
            return Outcome(fault, "passed" if run.returncode == 0 else "FAILED", seconds, tail)
        if run.returncode == 1:
            summary = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
            return Outcome(fault, "caught", seconds, "; ".join(summary)[:300])
        if run.returncode == 0:
            return Outcome(fault, "MISSED", seconds, tail)
        return Outcome(fault, "ERROR", seconds, f"pytest exit code {run.returncode}\n{tail}")
    finally:
        if keep:
            print(f"  kept the copy in {copy}", flush=True)
        else:
            shutil.rmtree(copy, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the faults CI skips")
    parser.add_argument("--only", action="append", default=[], help="a fault's name (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep each temporary copy")
    parser.add_argument(
        "--unplanted",
        action="store_true",
        help="run each fault's test with no fault planted: it must pass",
    )
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("MDP_FAULT_JOBS", "2")),
        help="faults run at once (MDP_FAULT_JOBS, default 2)",
    )
    args = parser.parse_args(argv)

    chosen = [f for f in FAULTS if (f.name in args.only if args.only else args.all or f.in_ci)]
    if args.list:
        for f in FAULTS:
            print(f"{f.name:32} {'ci' if f.in_ci else '--all':6} {f.guarantee}")
        return 0
    unknown = set(args.only) - {f.name for f in FAULTS}
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")

    files = _repo_files()
    started = time.monotonic()
    outcomes: list[Outcome] = []
    # Each fault runs in its own copy, state folder and free ports: they can run side by side.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        running = {
            pool.submit(run_fault, fault, files, args.keep, not args.unplanted): fault
            for fault in chosen
        }
        for done in as_completed(running):
            outcome = done.result()
            outcomes.append(outcome)
            print(
                f"{outcome.fault.name}: {outcome.verdict} in {outcome.seconds:.0f}s  "
                f"{outcome.detail}",
                flush=True,
            )
    outcomes.sort(key=lambda o: chosen.index(o.fault))

    total = time.monotonic() - started
    print(f"\n{'fault':32} {'verdict':12} seconds")
    for o in outcomes:
        print(f"{o.fault.name:32} {o.verdict:12} {o.seconds:7.0f}")
    if args.unplanted:
        bad = [o for o in outcomes if o.verdict != "passed"]
        print(
            f"\n{len(outcomes) - len(bad)} of {len(outcomes)} tests passed unplanted in {total:.0f}s"
        )
        for o in bad:
            print(f"\n{o.fault.name}:\n{o.detail}")
        return 1 if bad else 0
    bad = [o for o in outcomes if o.verdict != "caught"]
    print(f"\n{len(outcomes) - len(bad)} of {len(outcomes)} planted faults caught in {total:.0f}s")
    if bad:
        print(
            "A guarantee lost its test: the faults above were not caught. Each names the file "
            "and the test (tests/faults/catalog.py); make the test fail on the fault, or update "
            "the fault if the code it plants into has moved."
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
