"""Pulumi-mocks fixtures: run the program for a stack and inspect every declared resource and output."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.mocks import (
    ACCOUNT_ID,
    DELETE,
    MOCK_AMI,
    PROGRAM,
    ProgramRun,
    Recorded,
    RecordingMocks,
    RecordingMonitor,
    Resolved,
    last_declared,
    resolve,
    run_program,
    stack_config,
    walk_strings,
)

__all__ = [
    "ACCOUNT_ID",
    "DELETE",
    "MOCK_AMI",
    "PROGRAM",
    "ProgramRun",
    "Recorded",
    "RecordingMocks",
    "RecordingMonitor",
    "Resolved",
    "cached_run",
    "last_declared",
    "resolve",
    "run_program",
    "stack_config",
    "walk_strings",
]

_CACHE: dict[str, ProgramRun] = {}


def cached_run(stack: str) -> ProgramRun:
    """The committed config of `stack`, run once per test session."""
    if stack not in _CACHE:
        _CACHE[stack] = run_program(stack)
    return _CACHE[stack]


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return cached_run("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return cached_run("prod")


@pytest.fixture(params=["dev", "prod"], scope="session")
def each_stack(request: pytest.FixtureRequest) -> ProgramRun:
    return cached_run(request.param)


@pytest.fixture(autouse=True)
def _event_loop_guard() -> Iterator[None]:
    # Pulumi's sync helpers need a current event loop on the main thread.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield
