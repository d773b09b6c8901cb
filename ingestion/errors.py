"""Errors a sync can end with, each saying what happened, what was kept safe and what to do next."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.warehouse import REBUILD_RAW


class IngestionError(Exception):
    """A sync failure a user can act on."""

    def __init__(self, what: str, kept_safe: str, next_step: str) -> None:
        self.what = what
        self.kept_safe = kept_safe
        self.next_step = next_step
        super().__init__(f"{what}\n{kept_safe}\n{next_step}")


class SourceUnavailable(IngestionError):
    """The source PostgreSQL cannot be reached, or went away during the read."""


class SourceSchemaError(IngestionError):
    """A stream in the catalog has no usable table in the source."""


class ReconciliationFailed(IngestionError):
    """Raw and source disagree on row count or checksum for at least one stream."""

    def __init__(self, mismatches: list[str], streams: list[str]) -> None:
        self.mismatches = mismatches
        self.streams = streams
        # The full SyncResult, so a caller can still print what was synced.
        self.result: object | None = None
        names = ", ".join(streams)
        super().__init__(
            "Reconciliation failed: RAW does not match the source for "
            f"{len(streams)} stream(s):\n  " + "\n  ".join(mismatches),
            "Every stream's rows and cursor were committed; nothing was rolled back or deleted.",
            "Rebuild the affected stream(s) from the source with "
            f"`mdp sync --full-refresh --stream <name>` ({names}); if a stream keeps "
            "drifting, the source is hard-deleting rows or committing rows later than the "
            "lookback window (raise --lookback).",
        )


class SyncAborted(IngestionError):
    """A stream stopped because another stream of the same sync failed."""


class WarehouseBusy(IngestionError):
    """Another process holds the RAW DuckDB file."""


class RawDamaged(IngestionError):
    """The RAW DuckDB file exists but cannot be read (truncated, overwritten, not DuckDB)."""

    def __init__(self, path: Path, error: BaseException | str) -> None:
        super().__init__(
            f"The RAW warehouse {path} is damaged and cannot be read ({error}).",
            "Nothing was written, and the damaged file was left as it is. The source holds "
            "every row, so nothing is lost.",
            f"Rebuild RAW from the source with `{REBUILD_RAW}`: it moves the damaged file "
            "aside (renamed *.damaged-<time>, not deleted) and loads every stream again.",
        )


N = TypeVar("N", int, float)


def number_from_env(
    env: str, parse: Callable[[str], N], minimum: N, default: N, kind: str, example: str
) -> N:
    """`env` read as a `kind` (e.g. "whole number") at least `minimum`; `default` when unset.

    A bad value stops the sync before anything is read, naming the variable and its fix.
    """
    value = os.environ.get(env)
    if not value:
        return default
    try:
        number = parse(value)
        if number < minimum:
            raise ValueError(value)
    except ValueError:
        raise IngestionError(
            f"{env}={value!r} is not a {kind} >= {minimum}.",
            "Nothing was read or written.",
            f"Set {env} to e.g. {example}, or unset it for the default ({default}).",
        ) from None
    return number
