"""One AWS emulator and one stand-in RDS for every rehearsal in the package; each rehearsal resets them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator


@pytest.fixture(scope="package")
def emulator() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


@pytest.fixture(scope="package")
def database() -> Iterator[StandInDatabase]:
    db = StandInDatabase().start()
    try:
        yield db
    finally:
        db.stop()


@pytest.fixture(autouse=True)
def _event_loop_guard() -> Iterator[None]:
    # Pulumi's sync helpers need a current event loop on the main thread.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield
