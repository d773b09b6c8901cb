"""One AWS emulator and one stand-in RDS for every rehearsal in the package; each rehearsal resets them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rehearsal.database import StandInDatabase
from rehearsal.emulator import Emulator
from tests.event_loop import pulumi_event_loop  # noqa: F401 (autouse for this package)


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
