"""One sync: every stream read from one source snapshot, committed stream by stream, then reconciled."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestion import raw, state
from ingestion.catalog import STREAMS, Stream, stream
from ingestion.errors import IngestionError, ReconciliationFailed, SourceUnavailable
from ingestion.raw import run
from ingestion.reconcile import Reconciliation
from ingestion.source import SourceReader
from mdp import localpg, paths

# Rows committed in the source up to this long after their `updated_at` was stamped (a long
# write transaction) are still caught: each sync re-reads this window behind the saved cursor.
DEFAULT_LOOKBACK = timedelta(minutes=10)

# Kills the process at a named point ("after-commit:<stream>" or "before-commit:<stream>"), so
# recovery from a crash is exercised for real rather than simulated.
FAILPOINT_ENV = "MDP_INGESTION_FAILPOINT"

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
    value = os.environ.get("MDP_SYNC_LOOKBACK_SECONDS")
    return timedelta(seconds=float(value)) if value else DEFAULT_LOOKBACK


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
) -> SyncResult:
    """Syncs the streams and reconciles them; raises ReconciliationFailed (with `.result`) on drift."""
    started = time.perf_counter()
    streams = select_streams(stream_names)
    conninfo = conninfo or source_conninfo()
    raw_path = raw_path or paths.raw_db()
    lookback = lookback_from_env() if lookback is None else lookback
    notify = progress or (lambda event, name, rows: None)

    # The source is opened (and every table checked) before the warehouse file is touched, so
    # an unreachable source leaves RAW exactly as it was.
    with SourceReader(conninfo) as source:
        columns = {s.name: source.columns(s) for s in streams}
        with raw.connect(raw_path) as con:
            state.ensure(con)
            saved = state.load_all(con)
            sync_id = max((s.sync_id for s in saved.values()), default=0) + 1
            result = SyncResult(raw_path=raw_path, sync_id=sync_id)
            for s in streams:
                notify("stream", s.name, 0)
                result.streams.append(
                    _sync_stream(
                        source, con, s, columns[s.name], saved.get(s.name),
                        sync_id, full_refresh, lookback, notify,
                    )
                )  # fmt: skip
                notify("committed", s.name, result.streams[-1].rows_read)

            recon_started = time.perf_counter()
            for s in streams:
                notify("reconcile", s.name, 0)
                result.reconciliations.append(
                    Reconciliation(s.name, source.aggregates(s), raw.aggregates(con, s))
                )
            result.reconcile_seconds = time.perf_counter() - recon_started
    result.seconds = time.perf_counter() - started
    if result.mismatches:
        failure = ReconciliationFailed([r.describe() for r in result.mismatches])
        failure.result = result
        raise failure
    return result


def _sync_stream(
    source: SourceReader,
    con: raw.duckdb.DuckDBPyConnection,
    s: Stream,
    columns: list,
    saved: state.StreamState | None,
    sync_id: int,
    full_refresh: bool,
    lookback: timedelta,
    notify: Progress,
) -> StreamResult:
    started = time.perf_counter()
    replace_all = full_refresh or saved is None
    since = (
        None
        if replace_all or saved is None or saved.cursor_value is None
        else (saved.cursor_value - lookback)
    )
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
            source.read(s, columns, since),
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
