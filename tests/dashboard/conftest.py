"""Fixtures: a dashboard server over a temporary MDP_HOME, and a headless Chromium."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.server import serve
from source_generator import GeneratorConfig
from source_generator.config import BillingRates
from tests.seeded_history import build_seeded_history

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Server:
    """A running `mdp dashboard` over its own MDP_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = {**os.environ, "MDP_HOME": str(home)}
        env.pop("MDP_TARGET", None)
        home.mkdir(parents=True, exist_ok=True)
        self.log = home.parent / "dashboard.log"
        with self.log.open("wb") as log:
            self.process, self.url = serve(
                "127.0.0.1", 0, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dashboard server did not start:\n{log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make system-deps` installs it (apt-get install chromium)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def start_server() -> Iterator[type[Server]]:
    started: list[Server] = []

    class _Tracked(Server):
        def __init__(self, home: Path) -> None:
            super().__init__(home)
            started.append(self)

    yield _Tracked
    for s in started:
        s.stop()


# A year of billing history, monthly subscriptions only, so that the MRR mart and the monthly
# net revenue mart describe the same subscriptions. Half the dunning retries fail, so the year
# has some involuntary churn (by default a retry fails as rarely as any attempt).
HISTORY_CONFIG = GeneratorConfig(
    rows_per_cycle=12, seed=31, billing=BillingRates(annual_share=0.0, retry_failure=0.5)
)
HISTORY_MONTHS = 13


@dataclass(frozen=True)
class SeededHistory:
    home: Path  # MDP_HOME: the warehouse files are under home/warehouse
    source_dsn: str
    config: GeneratorConfig


@pytest.fixture(scope="session")
def seeded_history(
    tmp_path_factory: pytest.TempPathFactory, source_db_factory: Callable[[], str]
) -> Iterator[SeededHistory]:
    """Generated source (13 months up to today's midnight), synced to RAW, marts built by dbt."""
    home = tmp_path_factory.mktemp("history") / "home"
    dsn = source_db_factory()
    build_seeded_history(home, dsn, HISTORY_CONFIG, HISTORY_MONTHS)
    yield SeededHistory(home, dsn, HISTORY_CONFIG)
