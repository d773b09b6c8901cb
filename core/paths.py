"""Where the local target keeps its state: one folder, `.local/` at the repository root by default."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def local_home() -> Path:
    """The local state folder; `MDP_HOME` moves it (tests point it at a temporary folder)."""
    return Path(os.environ.get("MDP_HOME", REPO_ROOT / ".local")).resolve()


def pg_dir() -> Path:
    """Data directory of the embedded PostgreSQL (pgserver)."""
    return local_home() / "pg"


def warehouse_dir() -> Path:
    return local_home() / "warehouse"


def raw_db() -> Path:
    """The DuckDB file attached as `RAW` (what the local loader writes)."""
    return warehouse_dir() / "raw.duckdb"


def analytics_db() -> Path:
    """The DuckDB file attached as `ANALYTICS` (what dbt builds)."""
    return warehouse_dir() / "analytics.duckdb"


def exports_dir() -> Path:
    """Parquet exports of the marts."""
    return local_home() / "exports"


def transform_dir() -> Path:
    """The dbt project."""
    return Path(os.environ.get("MDP_DBT_PROJECT_DIR", REPO_ROOT / "transform")).resolve()


def bench_dir() -> Path:
    """Where the benchmarks write their figures as JSON, for scripts."""
    return local_home() / "bench"


def alerts_log() -> Path:
    """Where the local target's alerts go, one JSON object a line, as well as to the console."""
    return local_home() / "alerts.log"
