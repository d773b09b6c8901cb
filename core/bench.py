"""Benchmark figures as JSON under `.local/bench/`, beside the table each benchmark prints."""

from __future__ import annotations

import json
import os
import platform
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
