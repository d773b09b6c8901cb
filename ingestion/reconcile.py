"""What each sync re-verifies of RAW against the source: the window it read, and a rotating slice of ids.

Every sync compares, per stream, the row count and checksum of (id, cursor) on both sides for
- the window just read (rows whose cursor is at or after the read's start), and
- a slice of the id space: the table's ids fall into buckets of `bucket_ids` ids, and each sync
  checks the next 1/k of the buckets (k = `MDP_RECONCILE_SPAN`), wrapping around,
so a row altered or lost outside every window is still found within k syncs, with its bucket's id
range. `MDP_RECONCILE_MAX_IDS`, when set, caps the ids a slice checks, so a sync's cost stops
growing with the table: a table of more than k times that many ids is then covered within
ceil(its buckets / the slice's buckets) syncs instead (see `syncs_to_cover`). Unset, there is no
cap and the k-sync guarantee holds at any size. A full reconciliation (every bucket) runs after
a full refresh, on the first sync of a stream, and on `mdp sync --reconcile full`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ingestion.errors import number_from_env

Mode = Literal["auto", "full", "off"]
MODES: tuple[Mode, ...] = ("auto", "full", "off")

SPAN_ENV = "MDP_RECONCILE_SPAN"
DEFAULT_SPAN = 7
BUCKET_IDS_ENV = "MDP_RECONCILE_BUCKET_IDS"
# About 1.5 MB of (id, cursor) per bucket: a 10M-row table has ~600 buckets, ~90 per sync at k = 7.
DEFAULT_BUCKET_IDS = 1 << 14
# When set, the most ids one sync checks of one table (rounded down to whole buckets, at least
# one): below k times this many ids a table is covered in k syncs; above it, in more
# (`syncs_to_cover`). 0, the default: no cap, every table within k syncs.
MAX_IDS_ENV = "MDP_RECONCILE_MAX_IDS"
DEFAULT_MAX_IDS = 0
# How many source connections compute one sync's aggregates at once (each a PostgreSQL backend,
# so each can use a core of the source's machine).
CONNECTIONS_ENV = "MDP_RECONCILE_CONNECTIONS"
DEFAULT_CONNECTIONS = 2


@dataclass(frozen=True)
class Aggregates:
    """Row count and a checksum over (primary key, cursor) of a set of rows."""

    rows: int
    checksum: int

    @classmethod
    def of(cls, rows: int, sum_key: int, sum_cursor: int, sum_mixed: int) -> Aggregates:
        mixed = (int(sum_key) * 1_000_000_007 + int(sum_cursor) * 998_244_353 + int(sum_mixed)) % (
            1 << 64
        )
        return cls(int(rows), mixed)


NO_ROWS = Aggregates(0, 0)


def span_from_env() -> int:
    """k: every bucket of every table is re-verified at least once every k syncs."""
    return number_from_env(SPAN_ENV, int, 1, DEFAULT_SPAN, "whole number", str(DEFAULT_SPAN))


def bucket_ids_from_env() -> int:
    return number_from_env(
        BUCKET_IDS_ENV, int, 1, DEFAULT_BUCKET_IDS, "whole number", str(DEFAULT_BUCKET_IDS)
    )


def connections_from_env() -> int:
    return number_from_env(
        CONNECTIONS_ENV, int, 1, DEFAULT_CONNECTIONS, "whole number", str(DEFAULT_CONNECTIONS)
    )


def max_buckets_from_env(bucket_ids: int) -> int | None:
    """The cap on a slice, in whole buckets (at least one); None when there is no cap."""
    max_ids = number_from_env(MAX_IDS_ENV, int, 0, DEFAULT_MAX_IDS, "whole number", "131072")
    return max(1, max_ids // bucket_ids) if max_ids else None


def slice_buckets(buckets: int, span: int, max_buckets: int) -> int:
    """How many buckets one sync checks of a table of `buckets` buckets."""
    return max(1, min(math.ceil(buckets / span), max_buckets))


def syncs_to_cover(buckets: int, span: int, max_buckets: int) -> int:
    """Within how many syncs every bucket is checked: k, or more for a table beyond k slices."""
    return max(1, math.ceil(buckets / slice_buckets(buckets, span, max_buckets)))


@dataclass(frozen=True)
class Scope:
    """What one sync reconciles of one stream."""

    stream: str
    # The window just read: rows with cursor >= since. None when the slice covers every bucket.
    since: datetime | None
    bucket_ids: int
    # Buckets first..end-1 (bucket b holds ids b*bucket_ids .. (b+1)*bucket_ids - 1).
    first_bucket: int
    end_bucket: int
    full: bool
    # Where the next sync's slice starts.
    next_bucket: int

    @property
    def first_id(self) -> int:
        return self.first_bucket * self.bucket_ids

    @property
    def end_id(self) -> int:
        return self.end_bucket * self.bucket_ids


@dataclass(frozen=True)
class SourceAggregates:
    """The source side of one stream's reconciliation: what it covers, its window, its buckets."""

    scope: Scope
    window: Aggregates | None
    buckets: dict[int, Aggregates]


def plan_scope(
    stream: str,
    since: datetime | None,
    max_id: int | None,
    next_bucket: int,
    span: int,
    bucket_ids: int,
    full: bool,
    max_buckets: int | None = None,
) -> Scope:
    """This sync's window and slice for one stream.

    `max_id` is the source's largest id in the read snapshot (None for an empty table); `full`
    asks for every bucket (first sync, full refresh, `--reconcile full`); `max_buckets` caps the
    slice (None: no cap, every bucket within k syncs).
    """
    buckets = 0 if max_id is None else max(max_id, 0) // bucket_ids + 1
    if full or since is None or buckets == 0:
        return Scope(stream, None, bucket_ids, 0, max(buckets, 1), True, 0)
    first = next_bucket if 0 <= next_bucket < buckets else 0
    width = slice_buckets(buckets, span, buckets if max_buckets is None else max_buckets)
    end = min(first + width, buckets)
    return Scope(stream, since, bucket_ids, first, end, False, end if end < buckets else 0)


@dataclass(frozen=True)
class Check:
    """One comparison: the same rows counted and summed on both sides."""

    what: str
    source: Aggregates
    raw: Aggregates

    @property
    def ok(self) -> bool:
        return self.source == self.raw

    def describe(self, stream: str) -> str:
        diff = self.raw.rows - self.source.rows
        if diff > 0:
            why = f"RAW has {diff} more row(s) than the source (hard-deleted in the source, or duplicated in RAW)"
        elif diff < 0:
            why = f"RAW is missing {-diff} row(s) (committed in the source behind the cursor, or deleted from RAW)"
        else:
            why = "same row count but (id, updated_at) differ (a stale or altered row in RAW)"
        return (
            f"{stream} {self.what}: source {self.source.rows} rows / checksum "
            f"{self.source.checksum:016x}, RAW {self.raw.rows} rows / checksum "
            f"{self.raw.checksum:016x}: {why}"
        )


@dataclass(frozen=True)
class Reconciliation:
    stream: str
    scope: Scope
    window: Check | None
    # One check per bucket of the slice that holds rows on either side.
    buckets: dict[int, Check]

    @classmethod
    def compare(
        cls,
        source: SourceAggregates,
        raw_window: Aggregates | None,
        raw_buckets: dict[int, Aggregates],
    ) -> Reconciliation:
        scope = source.scope
        checks = {}
        for bucket in sorted(source.buckets.keys() | raw_buckets.keys()):
            lo = bucket * scope.bucket_ids
            checks[bucket] = Check(
                f"ids {lo}..{lo + scope.bucket_ids - 1}",
                source.buckets.get(bucket, NO_ROWS),
                raw_buckets.get(bucket, NO_ROWS),
            )
        window = None
        if scope.since is not None:
            window = Check(
                f"window updated_at >= {scope.since:%Y-%m-%d %H:%M:%S}",
                source.window or NO_ROWS,
                raw_window or NO_ROWS,
            )
        return cls(scope.stream, scope, window, checks)

    @property
    def mismatches(self) -> list[Check]:
        checks = [self.window] if self.window is not None else []
        return [c for c in (*checks, *self.buckets.values()) if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def rows_checked(self) -> int:
        return sum(c.source.rows for c in self.buckets.values())

    def coverage(self) -> str:
        s = self.scope
        what = "every id" if s.full else f"ids {s.first_id}..{s.end_id - 1}"
        window = "" if self.window is None else f" + {self.window.source.rows} rows in the window"
        return f"{what}{window}"

    def describe(self) -> str:
        """One line per difference, each naming the table and the id range or window."""
        if self.ok:
            return f"{self.stream}: {self.rows_checked} rows checked ({self.coverage()}), all match"
        return "; ".join(c.describe(self.stream) for c in self.mismatches)
