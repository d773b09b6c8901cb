"""A fixture for the packages whose tests call Pulumi's sync helpers: import it into their conftest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def pulumi_event_loop() -> Iterator[None]:
    # Pulumi's sync helpers need a current event loop on the main thread.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield
