"""Compares each stream's RAW table with the source snapshot it was read from."""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.source import Aggregates


@dataclass(frozen=True)
class Reconciliation:
    stream: str
    source: Aggregates
    raw: Aggregates

    @property
    def ok(self) -> bool:
        return self.source == self.raw

    def describe(self) -> str:
        """One line: what differs, and what that usually means."""
        if self.ok:
            return f"{self.stream}: {self.raw.rows} rows, checksum {self.raw.checksum:016x} match"
        diff = self.raw.rows - self.source.rows
        if diff > 0:
            why = f"RAW has {diff} more row(s) than the source (hard-deleted in the source, or duplicated in RAW)"
        elif diff < 0:
            why = f"RAW is missing {-diff} row(s) (committed in the source behind the cursor, or deleted from RAW)"
        else:
            why = "same row count but (id, updated_at) differ (a stale or altered row in RAW)"
        return (
            f"{self.stream}: source {self.source.rows} rows / checksum {self.source.checksum:016x}, "
            f"RAW {self.raw.rows} rows / checksum {self.raw.checksum:016x}: {why}"
        )
