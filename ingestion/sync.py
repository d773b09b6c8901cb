"""One sync: every stream read from one source snapshot, committed stream by stream, then reconciled."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from core import localpg, paths
from core.catalog import STREAMS, Stream, stream
from core.warehouse import damage, is_damage, move_aside
from ingestion import raw, state
from ingestion import reconcile as recon
from ingestion.errors import (
    IngestionError,
    RawDamaged,
    ReconciliationFailed,
    SourceUnavailable,
    SyncAborted,
    number_from_env,
)
from ingestion.raw import run
from ingestion.reconcile import Reconciliation
from ingestion.source import ReadPlan, SourceReader
from ingestion.types import SourceColumn

# Rows committed in the source up to this long after their `updated_at` was stamped (a long
# write transaction) are still caught: each sync re-reads this window behind the saved cursor.
DEFAULT_LOOKBACK = timedelta(minutes=10)
LOOKBACK_ENV = "MDP_SYNC_LOOKBACK_SECONDS"

# Kills the process at a named point ("after-commit:<stream>" or "before-commit:<stream>"), so
# recovery from a crash is exercised for real rather than simulated.
FAILPOINT_ENV = "MDP_INGESTION_FAILPOINT"

# How many streams are written at once (each in its own transaction).
WORKERS_ENV = "MDP_SYNC_WORKERS"

Progress = Callable[[str, str, int], None]


@dataclass
class StreamResult:
    stream: str
    rows_read: int
    inserted: int
    updated: int
    cursor: datetime | None
    generation_id: int
    seconds: float
    full_refresh: bool
    columns_added: list[str] = field(default_factory=list)


@dataclass
class SyncResult:
    raw_path: Path
    sync_id: int
    streams: list[StreamResult] = field(default_factory=list)
    reconciliations: list[Reconciliation] = field(default_factory=list)
    seconds: float = 0.0
    reconcile_seconds: float = 0.0
    # Wall time of each phase: opening both ends, the streams, the reconciliation, closing.
    phases: dict[str, float] = field(default_factory=dict)
    # Where a damaged RAW file was moved before a full refresh rebuilt it, if one was.
    damaged_moved_to: Path | None = None

    @property
    def mismatches(self) -> list[Reconciliation]:
        return [r for r in self.reconciliations if not r.ok]


def source_conninfo() -> str:
    """The source to read: MDP_SOURCE_DSN, else the local embedded PostgreSQL if it runs."""
    dsn = localpg.source_dsn(start_local=False)
    if dsn is None:
        raise SourceUnavailable(
            f"The local source PostgreSQL is not running (data folder {paths.pg_dir()}) and "
            f"{localpg.SOURCE_DSN_ENV} is not set.",
            "Nothing was written: RAW and every saved cursor are unchanged.",
            "Generate the source first (`mdp generate` starts it), or set "
            f"{localpg.SOURCE_DSN_ENV} to the source's DSN, then re-run `mdp sync`.",
        )
    return dsn


def lookback_from_env() -> timedelta:
    default = DEFAULT_LOOKBACK.total_seconds()
    seconds = number_from_env(LOOKBACK_ENV, float, 0.0, default, "number of seconds", "600")
    return timedelta(seconds=seconds)


@contextlib.contextmanager
def _damage_as_raw_damaged(path: Path) -> Iterator[None]:
    """A DuckDB error that means the RAW file is unreadable becomes RawDamaged, wherever it is hit."""
    try:
        yield
    except duckdb.Error as exc:
        if is_damage(exc):
            raise RawDamaged(path, exc) from exc
        raise


def _failpoint(stage: str, name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == f"{stage}:{name}":
        os.kill(os.getpid(), signal.SIGKILL)


def select_streams(names: Sequence[str] | None) -> list[Stream]:
    if not names:
        return list(STREAMS)
    try:
        return [stream(n) for n in names]
    except KeyError as exc:
        raise IngestionError(
            str(exc.args[0]),
            "Nothing was read or written.",
            "Pass --stream with one of the names listed.",
        ) from exc


def run_sync(
    conninfo: str | None = None,
    raw_path: Path | None = None,
    stream_names: Sequence[str] | None = None,
    full_refresh: bool = False,
    lookback: timedelta | None = None,
    progress: Progress | None = None,
    reconcile: recon.Mode = "auto",
) -> SyncResult:
    """Syncs the streams and reconciles them; raises ReconciliationFailed (with `.result`) on drift.

    `reconcile`: "auto" checks the window just read and the next 1/k of each table's id buckets
    (all of them after a full refresh); "full" checks every bucket; "off" skips the checks (only
    the benchmark uses it, to show their cost). A RAW file that cannot be read fails with
    RawDamaged; a full refresh moves it aside instead and rebuilds every stream from the source.
    """
    if reconcile not in recon.MODES:
        raise IngestionError(
            f"{reconcile!r} is not a reconciliation mode.",
            "Nothing was read or written.",
            f"Use one of: {', '.join(recon.MODES)}.",
        )
    raw_path = raw_path or paths.raw_db()
    try:
        return _run_sync(
            conninfo, raw_path, stream_names, full_refresh, lookback, progress, reconcile
        )
    except RawDamaged:
        if not full_refresh:
            raise
    # The source holds every row: rebuild RAW from it, keeping the damaged file beside it.
    moved_to = move_aside(raw_path)
    result = _run_sync(conninfo, raw_path, None, True, lookback, progress, reconcile)
    result.damaged_moved_to = moved_to
    return result


def _run_sync(
    conninfo: str | None,
    raw_path: Path,
    stream_names: Sequence[str] | None,
    full_refresh: bool,
    lookback: timedelta | None,
    progress: Progress | None,
    reconcile: recon.Mode,
) -> SyncResult:
    started = time.perf_counter()
    # DuckDB imports pandas on its first Arrow scan, a second of CPU: start it now so it overlaps
    # the connection and the first COPY instead of stalling every stream's first write.
    if "pandas" not in sys.modules:
        threading.Thread(target=importlib.import_module, args=("pandas",), daemon=True).start()
    streams = select_streams(stream_names)
    conninfo = conninfo or source_conninfo()
    lookback = lookback_from_env() if lookback is None else lookback
    notify = progress or (lambda event, name, rows: None)
    span, bucket_ids = recon.span_from_env(), recon.bucket_ids_from_env()
    max_buckets = recon.max_buckets_from_env(bucket_ids)
    connections = recon.connections_from_env()

    # The source is opened (and every table checked) before the warehouse file is touched, so
    # an unreachable source leaves RAW exactly as it was.
    with SourceReader(conninfo) as source:
        columns = source.columns(streams)
        reason = damage(raw_path)
        if reason is not None:
            raise RawDamaged(raw_path, reason)
        with _damage_as_raw_damaged(raw_path), raw.connect(raw_path) as con:
            state.ensure(con)
            saved = state.load_all(con)
            existing = raw.all_raw_columns(con)
            sync_id = max((s.sync_id for s in saved.values()), default=0) + 1
            result = SyncResult(raw_path=raw_path, sync_id=sync_id)
            plans = [
                ReadPlan(
                    s,
                    columns[s.name],
                    # A RAW table dropped by hand is reloaded whole, whatever its saved cursor.
                    _since(saved.get(s.name), full_refresh or s.name not in existing, lookback),
                )
                for s in streams
            ]
            planner = None
            if reconcile != "off":
                rotation = state.load_rotation(con, bucket_ids)
                since = {p.stream.name: p.since for p in plans}

                def planner(s: Stream, max_id: int | None) -> recon.Scope:
                    return recon.plan_scope(
                        s.name,
                        since[s.name],
                        max_id,
                        rotation.get(s.name, 0),
                        span,
                        bucket_ids,
                        full=reconcile == "full",
                        max_buckets=max_buckets,
                    )

            source.start(plans, planner, connections)
            result.phases["open"] = time.perf_counter() - started
            result.streams = _sync_streams(
                source, con, streams, columns, existing, saved, sync_id, full_refresh, notify
            )

            recon_started = time.perf_counter()
            if planner is not None:
                notify("reconcile", "all streams", 0)
                at_source = source.source_aggregates()
                scopes = {name: side.scope for name, side in at_source.items()}
                at_raw = raw.reconcile_aggregates(con, streams, scopes)
                result.reconciliations = [
                    Reconciliation.compare(at_source[s.name], *at_raw[s.name]) for s in streams
                ]
                state.save_reconciliation(con, sync_id, result.reconciliations)
            result.reconcile_seconds = time.perf_counter() - recon_started
            result.phases["streams"] = recon_started - started - result.phases["open"]
            result.phases["reconcile"] = result.reconcile_seconds
            closing = time.perf_counter()
    result.phases["close"] = time.perf_counter() - closing
    result.seconds = time.perf_counter() - started
    if result.mismatches:
        failure = ReconciliationFailed(
            [c.describe(r.stream) for r in result.mismatches for c in r.mismatches],
            [r.stream for r in result.mismatches],
        )
        failure.result = result
        raise failure
    return result


def _sync_streams(
    source: SourceReader,
    con: raw.duckdb.DuckDBPyConnection,
    streams: list[Stream],
    columns: dict[str, list[SourceColumn]],
    existing: dict[str, dict[str, str]],
    saved: dict[str, state.StreamState],
    sync_id: int,
    full_refresh: bool,
    notify: Progress,
) -> list[StreamResult]:
    """Each stream in its own warehouse transaction, several at once.

    Streams write different tables, so their transactions never conflict; running them side by
    side hides each one's fixed cost (planning, commit) behind the others'.
    """

    def one(s: Stream) -> StreamResult:
        cur = con.cursor()
        try:
            run(cur, "set timezone = 'UTC'")
            notify("stream", s.name, 0)
            done = _sync_stream(
                source, cur, s, columns[s.name], existing.get(s.name), saved.get(s.name),
                sync_id, full_refresh, notify,
            )  # fmt: skip
            notify("committed", s.name, done.rows_read)
            return done
        except BaseException:
            # The reader cannot skip a stream nobody consumes: stop it, and the other streams.
            source.abort()
            raise
        finally:
            cur.close()

    workers = max(1, min(len(streams), int(os.environ.get(WORKERS_ENV, "3"))))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stream") as pool:
        futures = [pool.submit(one, s) for s in streams]
        wait(futures)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        # The root cause, not the streams stopped because of it.
        first = next((e for e in errors if not isinstance(e, SyncAborted)), errors[0])
        raise first  # type: ignore[misc]
    return [f.result() for f in futures]


def _since(
    saved: state.StreamState | None, full_refresh: bool, lookback: timedelta
) -> datetime | None:
    """Where the read starts: the saved cursor minus the lookback, inclusive; None reads all."""
    if full_refresh or saved is None or saved.cursor_value is None:
        return None
    return saved.cursor_value - lookback


def _sync_stream(
    source: SourceReader,
    con: raw.duckdb.DuckDBPyConnection,
    s: Stream,
    columns: list[SourceColumn],
    existing: dict[str, str] | None,
    saved: state.StreamState | None,
    sync_id: int,
    full_refresh: bool,
    notify: Progress,
) -> StreamResult:
    started = time.perf_counter()
    replace_all = full_refresh or saved is None or existing is None
    if saved is None:
        generation_id = 0
    else:
        generation_id = saved.generation_id + 1 if full_refresh else saved.generation_id
    extracted_at = datetime.now(UTC)

    run(con, "begin transaction")
    try:
        loaded = raw.load(
            con,
            s,
            columns,
            source.chunks(s),
            existing=existing,
            extracted_at=extracted_at,
            generation_id=generation_id,
            sync_id=sync_id,
            replace_all=replace_all,
            on_rows=lambda n: notify("rows", s.name, n),
        )
        previous = saved.cursor_value if saved is not None and not replace_all else None
        cursor = max((c for c in (loaded.max_cursor, previous) if c is not None), default=None)
        state.save(
            con,
            state.StreamState(
                stream=s.name,
                cursor_field=s.cursor_field,
                cursor_value=cursor,
                generation_id=generation_id,
                sync_id=sync_id,
                synced_at=extracted_at,
                rows_read=loaded.rows_read,
                rows_inserted=loaded.inserted,
                rows_updated=loaded.updated,
            ),
        )
        _failpoint("before-commit", s.name)
        run(con, "commit")
    except BaseException:
        with contextlib.suppress(raw.duckdb.Error):
            run(con, "rollback")
        raise
    _failpoint("after-commit", s.name)
    return StreamResult(
        stream=s.name,
        rows_read=loaded.rows_read,
        inserted=loaded.inserted,
        updated=loaded.updated,
        cursor=cursor,
        generation_id=generation_id,
        seconds=time.perf_counter() - started,
        full_refresh=replace_all and saved is not None,
        columns_added=loaded.columns_added,
    )
