"""`make test` hands the slowest files out first; a renamed file would silently lose its place."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import SLOWEST_FILES

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent


def test_every_file_named_slowest_exists() -> None:
    missing = [name for name in SLOWEST_FILES if not (TESTS / name).is_file()]
    assert not missing, f"tests/conftest.py SLOWEST_FILES names files that are gone: {missing}"


def test_make_test_runs_whole_files_per_worker_in_collection_order() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (command,) = re.findall(r"^\t\$\(RUN\) pytest .*$", makefile.split("\ntest:", 1)[1], re.M)[:1]
    # Per file, so module fixtures (a DAG run, a rehearsal) are built once; in our order.
    assert "--dist loadfile" in command and "--no-loadscope-reorder" in command
    assert "-n $(TEST_WORKERS)" in command
