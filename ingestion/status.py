"""What `mdp status` reports about RAW: the warehouse file and each stream's saved cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from core import paths
from core.warehouse import REBUILD_RAW, damage, damaged_message, is_damage
from ingestion import state


def raw_status(path: Path | None = None) -> dict[str, Any]:
    """The RAW file and per-stream state, read-only; never creates or locks the file for long."""
    path = path or paths.raw_db()
    report: dict[str, Any] = {
        "path": str(path),
        "exists": path.exists(),
        "bytes": path.stat().st_size if path.exists() else 0,
        "streams": {},
    }
    if not path.exists():
        return report
    reason = damage(path)
    if reason is not None:
        report["error"] = damaged_message(path, reason, REBUILD_RAW)
        return report
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if is_damage(exc):
            report["error"] = damaged_message(path, exc, REBUILD_RAW)
        else:
            report["busy"] = f"cannot read it now (a sync may be running): {exc}"
        return report
    try:
        states = state.load_all(con)
    except duckdb.Error as exc:
        if not is_damage(exc):
            raise
        report["error"] = damaged_message(path, exc, REBUILD_RAW)
        return report
    finally:
        con.close()
    for name, s in sorted(states.items()):
        report["streams"][name] = {
            "cursor_field": s.cursor_field,
            "cursor": s.cursor_value.isoformat() if s.cursor_value else None,
            "generation_id": s.generation_id,
            "last_sync_id": s.sync_id,
            "last_synced_at": s.synced_at.isoformat(),
            "last_rows_read": s.rows_read,
        }
    return report
