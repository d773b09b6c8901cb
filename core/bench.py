"""Benchmark figures as JSON under `.local/bench/`, beside the table each benchmark prints."""

from __future__ import annotations

import json
import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import paths


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """Writes `<bench dir>/<name>.json`: the figures, when and where they were measured."""
    out = paths.bench_dir() / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        **figures,
    }
    out.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    return out


def copy_to_disk(source: Path, target: Path) -> None:
    """Copies a file, or a folder with everything in it, and writes the copy to disk first.

    A fresh copy's pages stay dirty in the page cache; the kernel writes them back during
    whatever runs next, and DuckDB's fsync when a run closes a copied file writes them inside
    that run: at 10M rows, closing a copied 440 MB RAW file took 0.20-0.23 s that way, against
    0.03 s once the copy was on disk. A daily run opens files that are on disk already, so a
    benchmark that starts its timed run from a copy makes the copy durable first.
    """
    if source.is_dir():
        shutil.copytree(source, target)
        copied = sorted(path for path in target.rglob("*") if path.is_file())
    else:
        shutil.copy(source, target)
        copied = [target]
    for path in copied:
        with open(path, "rb+") as file:
            os.fsync(file.fileno())
