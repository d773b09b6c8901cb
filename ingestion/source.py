"""Reads streams from the source PostgreSQL in one consistent snapshot, as Arrow tables via COPY."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv
from psycopg import sql

from core.catalog import SOURCE_SCHEMA, Stream
from ingestion.errors import SourceSchemaError, SourceUnavailable, SyncAborted
from ingestion.reconcile import Aggregates, Scope, SourceAggregates
from ingestion.types import SourceColumn

# What to reconcile of a stream, given its table's largest id (None when empty).
Planner = Callable[[Stream, int | None], Scope]

# Rows travel in chunks of about this many CSV bytes, so Arrow parses and DuckDB writes one chunk
# while PostgreSQL is still sending the next.
CHUNK_BYTES = 32 << 20

# Both engines compute this checksum the same way; the two moduli keep the product inside bigint.
# `offset 0` keeps the subquery whole, so each row's cursor is converted once, not once per sum.
_KEYS = """select {pk}::bigint as k, round(date_part('epoch', {cursor}) * 1000000)::bigint as us
      from {table}"""
_SUMS = (
    "coalesce(sum(k), 0), coalesce(sum(us), 0), coalesce(sum((k %% 1000003) * (us %% 1000033)), 0)"
)
# Count and checksum of a whole table, or of the rows `{where}` selects.
CHECKSUM_SQL = f"select count(*), {_SUMS} from ({_KEYS} {{where}} offset 0) as s"
# The same per bucket of `{width}` ids, over the buckets lo/width .. hi/width - 1: one index range
# scan and one plain aggregate per bucket. The source schema's (id) include (cursor) index makes
# each scan index-only; grouping the whole range instead costs a hash aggregate per row.
BUCKETS_SQL = (
    f"select b as bucket, s.* from generate_series({{lo}}::bigint / {{width}}, {{hi}}::bigint / {{width}} - 1) as b, "
    f"lateral (select count(*), {_SUMS} from ({_KEYS} where {{pk}} >= b * {{width}} "
    f"and {{pk}} < (b + 1) * {{width}} offset 0) as r) as s where s.count > 0"
)


def _describe(conninfo: str) -> str:
    """Where the source is, without the password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "the configured source"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    db = params.get("dbname") or params.get("user") or "postgres"
    return f"postgresql://{host}:{port}/{db}" if not str(host).startswith("/") else f"{host}/{db}"


def _unavailable(where: str, exc: BaseException) -> SourceUnavailable:
    return SourceUnavailable(
        f"The source PostgreSQL at {where} is unavailable: {str(exc).strip() or type(exc).__name__}",
        "Nothing was written for the stream being read: RAW and its saved cursor are unchanged "
        "(streams already reported as synced were committed whole).",
        "Start the source (`mdp generate` starts the local one) or fix MDP_SOURCE_DSN, then "
        "re-run `mdp sync`; it resumes from the saved cursors.",
    )


@dataclass(frozen=True)
class ReadPlan:
    """What to read of one stream: its columns, and rows with cursor >= `since` (all if None)."""

    stream: Stream
    columns: list[SourceColumn]
    since: datetime | None


class _Stopped(Exception):
    """The consumer gave up; the reader thread ends quietly."""


def _copy_statement(plan: ReadPlan) -> sql.Composed:
    select = sql.SQL("select {cols} from {table}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.columns),
        table=sql.Identifier(SOURCE_SCHEMA, plan.stream.name),
    )
    if plan.since is not None:
        select = sql.SQL("{select} where {cursor} >= {since}").format(
            select=select,
            cursor=sql.Identifier(plan.stream.cursor_field),
            since=sql.Literal(plan.since),
        )
    return sql.SQL("copy ({select}) to stdout (format csv)").format(select=select)


class SourceReader:
    """A read-only REPEATABLE READ transaction on the source: every stream comes from one snapshot."""

    def __init__(self, conninfo: str, connect_timeout: int = 5) -> None:
        self._conninfo = conninfo
        self._timeout = connect_timeout
        self.where = _describe(conninfo)
        self._conn: psycopg.Connection | None = None
        self._thread: threading.Thread | None = None
        self._agg_threads: list[threading.Thread] = []
        self._agg_error: BaseException | None = None
        self._snapshot = ""
        self._stop = threading.Event()
        self._plans: dict[str, ReadPlan] = {}
        self._queues: dict[str, queue.Queue[bytes | BaseException | None]] = {}
        self._aggregates: dict[str, SourceAggregates] = {}
        self._error: BaseException | None = None

    def __enter__(self) -> SourceReader:
        try:
            conn = psycopg.connect(self._conninfo, connect_timeout=self._timeout, autocommit=True)
            # UTC and ISO keep the CSV text exactly what Arrow parses into timestamptz.
            conn.execute("set timezone = 'UTC'")
            conn.execute("set datestyle = 'ISO, YMD'")
            conn.execute("set bytea_output = 'hex'")
            conn.execute("begin isolation level repeatable read read only")
            # Reconciliation reads this same snapshot on a second connection, in parallel.
            row = conn.execute("select pg_export_snapshot()").fetchone()
            self._snapshot = str(row[0]) if row else ""
        except psycopg.Error as exc:
            raise _unavailable(self.where, exc) from exc
        self._conn = conn
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in (self._thread, *self._agg_threads):
            if thread is not None:
                thread.join()
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        assert self._conn is not None, "use SourceReader as a context manager"
        return self._conn

    def _execute(self, query: sql.Composed | str, params: tuple[object, ...] = ()) -> list:
        try:
            return self.conn.execute(query, params).fetchall()
        except psycopg.OperationalError as exc:
            raise _unavailable(self.where, exc) from exc

    def columns(self, streams: list[Stream]) -> dict[str, list[SourceColumn]]:
        """Each stream's table columns in source order, as of this snapshot."""
        rows = self._execute(
            """
            select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %s and c.relname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
              and a.attnum > 0 and not a.attisdropped
            order by c.relname, a.attnum
            """,
            (SOURCE_SCHEMA, [s.name for s in streams]),
        )
        found: dict[str, list[SourceColumn]] = {}
        for table, name, pg_type in rows:
            found.setdefault(table, []).append(SourceColumn(name, pg_type))
        for stream in streams:
            self._check(stream, found.get(stream.name, []))
        return {s.name: found[s.name] for s in streams}

    def _check(self, stream: Stream, columns: list[SourceColumn]) -> None:
        names = {c.name for c in columns}
        if not columns:
            raise SourceSchemaError(
                f"The source has no table {stream.source_table} (stream {stream.name!r}).",
                "Nothing was written: RAW and every saved cursor are unchanged.",
                "Create the source schema (`mdp generate` does) or remove the stream from "
                "core/catalog.py.",
            )
        missing = [c for c in (*stream.primary_key, stream.cursor_field) if c not in names]
        if missing:
            raise SourceSchemaError(
                f"{stream.source_table} has no column(s) {', '.join(missing)} that the catalog "
                f"declares as primary key or cursor of stream {stream.name!r}.",
                "Nothing was written: RAW and every saved cursor are unchanged.",
                "Fix the stream declaration in core/catalog.py or the source table.",
            )

    def start(
        self, plans: list[ReadPlan], planner: Planner | None = None, connections: int = 1
    ) -> None:
        """Reads the planned streams on a thread, ahead of the caller, and their aggregates on others.

        PostgreSQL encodes the next rows while this process parses and writes the previous
        ones, and the reconciliation aggregates run while RAW is still being written, on
        `connections` connections of their own: `planner` turns each table's largest id into
        what to reconcile of it (None: no reconciliation). Each stream's queue holds at most two
        chunks, which bounds memory.
        """
        self._plans = {p.stream.name: p for p in plans}
        self._queues = {p.stream.name: queue.Queue(maxsize=2) for p in plans}
        self._thread = threading.Thread(target=self._produce, args=(plans,), daemon=True)
        self._thread.start()
        if planner is not None:
            self._agg_threads = [
                threading.Thread(
                    target=self._aggregate_all,
                    args=([p.stream for p in plans], planner, connections),
                    daemon=True,
                )
            ]
            self._agg_threads[0].start()

    def _put(self, name: str, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queues[name].put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, plans: list[ReadPlan]) -> None:
        for i, plan in enumerate(plans):
            name = plan.stream.name
            try:
                with self.conn.cursor() as cur, cur.copy(_copy_statement(plan)) as copy:
                    buffer = bytearray()
                    # Each COPY message is one row: this loop only appends bytes; the values are
                    # parsed by Arrow, in C++, a chunk at a time.
                    for data in copy:
                        buffer += data
                        if len(buffer) >= CHUNK_BYTES:
                            if not self._put(name, bytes(buffer)):
                                raise _Stopped
                            buffer.clear()
                    if buffer and not self._put(name, bytes(buffer)):
                        raise _Stopped
                if not self._put(name, None):
                    return
            except _Stopped:
                return
            except BaseException as exc:
                error = (
                    _unavailable(self.where, exc)
                    if isinstance(exc, psycopg.OperationalError)
                    else exc
                )
                self._error = error
                for later in plans[i:]:
                    self._put(later.stream.name, error)
                return

    def _snapshot_connection(self) -> psycopg.Connection:
        """A new connection that reads the same snapshot as the rows."""
        conn = psycopg.connect(self._conninfo, connect_timeout=self._timeout, autocommit=True)
        try:
            conn.execute("begin isolation level repeatable read read only")
            conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(self._snapshot)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _aggregate_all(self, streams: list[Stream], planner: Planner, connections: int) -> None:
        """The reconciliation aggregates, on connections of their own that share the snapshot.

        This thread plans each stream's scope (one index lookup per table), then it and
        `connections - 1` more threads take the windows and runs of buckets from one list,
        largest first, so the slice's index scans use more than one core of the source.
        """
        try:
            with self._snapshot_connection() as conn:
                scopes = [_plan(conn, stream, planner) for stream in streams]
                work = _queries(streams, scopes)
                results: list[tuple[str, Aggregates | None, dict[int, Aggregates]]] = []
                extra = [
                    threading.Thread(target=self._aggregate_work, args=(None, work, results))
                    for _ in range(min(connections, len(work)) - 1)
                ]
                for thread in extra:
                    thread.start()
                self._aggregate_work(conn, work, results)
                for thread in extra:
                    thread.join()
            if self._agg_error is not None or self._stop.is_set():
                return
            for stream, scope in zip(streams, scopes, strict=True):
                window = next(
                    (w for name, w, _ in results if name == stream.name and w is not None), None
                )
                buckets = {
                    b: agg for name, _, found in results if name == stream.name
                    for b, agg in found.items()
                }  # fmt: skip
                self._aggregates[stream.name] = SourceAggregates(scope, window, buckets)
        except BaseException as exc:
            self._fail_aggregates(exc)

    def _fail_aggregates(self, exc: BaseException) -> None:
        if self._agg_error is None:
            self._agg_error = (
                _unavailable(self.where, exc) if isinstance(exc, psycopg.OperationalError) else exc
            )

    def _aggregate_work(
        self,
        conn: psycopg.Connection | None,
        work: list[AggregateQuery],
        results: list[tuple[str, Aggregates | None, dict[int, Aggregates]]],
    ) -> None:
        """Takes items off `work` until it is empty, on `conn` or on a new snapshot connection."""
        try:
            with contextlib.ExitStack() as stack:
                if conn is None:
                    conn = stack.enter_context(self._snapshot_connection())
                while self._agg_error is None and not self._stop.is_set():
                    try:
                        item = work.pop()
                    except IndexError:
                        return
                    results.append(item.run(conn))
        except BaseException as exc:
            self._fail_aggregates(exc)

    def chunks(self, stream: Stream) -> Iterator[pa.Table]:
        """The stream's planned rows, as Arrow tables of about CHUNK_BYTES of CSV each."""
        plan = self._plans[stream.name]
        columns = plan.columns
        read_options = pcsv.ReadOptions(column_names=[c.name for c in columns], block_size=8 << 20)
        # Text values may hold newlines; only an unquoted empty field is NULL (PostgreSQL writes
        # an empty string as ""), so dirty values such as 'N/A' or 'NULL' stay text.
        parse_options = pcsv.ParseOptions(newlines_in_values=True)
        convert_options = pcsv.ConvertOptions(
            column_types={c.name: c.arrow_type for c in columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        source = self._queues[stream.name]
        while (item := self._next(source, stream)) is not None:
            if isinstance(item, BaseException):
                raise item
            try:
                yield pcsv.read_csv(
                    pa.py_buffer(item),
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
            except pa.ArrowInvalid as exc:
                raise SourceSchemaError(
                    f"A value in {stream.source_table} cannot be loaded into its RAW type: {exc}",
                    "Nothing was written for this stream: its RAW table and cursor are unchanged.",
                    "Fix the value in the source, or map the column's type in ingestion/types.py.",
                ) from exc

    def _next(
        self, source: queue.Queue[bytes | BaseException | None], stream: Stream
    ) -> bytes | BaseException | None:
        while True:
            try:
                return source.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    raise SyncAborted(
                        f"Stream {stream.name!r} stopped because another stream of this sync failed.",
                        "Its RAW table and cursor are unchanged.",
                        "Fix the error reported for the other stream, then re-run `mdp sync`.",
                    ) from None

    def abort(self) -> None:
        """Stops the reader thread; streams still waiting for rows end with SyncAborted."""
        self._stop.set()

    def source_aggregates(self) -> dict[str, SourceAggregates]:
        """Each reconciled stream's window and bucket aggregates, from the same snapshot as the rows."""
        assert self._thread is not None and self._agg_threads, "start() first"
        self._thread.join()
        for thread in self._agg_threads:
            thread.join()
        if self._error is not None:
            raise self._error
        if self._agg_error is not None:
            raise self._agg_error
        return dict(self._aggregates)


def _names(stream: Stream) -> dict[str, sql.Composable]:
    return {
        "pk": sql.Identifier(stream.primary_key[0]),
        "cursor": sql.Identifier(stream.cursor_field),
        "table": sql.Identifier(SOURCE_SCHEMA, stream.name),
    }


def _plan(conn: psycopg.Connection, stream: Stream, planner: Planner) -> Scope:
    # The largest id is an index lookup; reading it here, not before the rows, keeps a table
    # that another session has locked from holding up the whole sync.
    found = conn.execute(
        sql.SQL("select max({pk})::bigint from {table}").format(**_names(stream)), ()
    ).fetchone()
    return planner(stream, None if found is None or found[0] is None else int(found[0]))


# Buckets per aggregate query: small enough to share a large table's slice between connections.
BUCKETS_PER_QUERY = 8


@dataclass(frozen=True)
class AggregateQuery:
    """One query of the reconciliation: a stream's window, or a run of its slice's buckets."""

    stream: Stream
    since: datetime | None = None
    first_bucket: int = 0
    end_bucket: int = 0
    bucket_ids: int = 1

    def run(self, conn: psycopg.Connection) -> tuple[str, Aggregates | None, dict[int, Aggregates]]:
        names = _names(self.stream)
        if self.since is not None:
            where = sql.SQL("where {cursor} >= {since}").format(
                cursor=names["cursor"], since=sql.Literal(self.since)
            )
            row = conn.execute(sql.SQL(CHECKSUM_SQL).format(where=where, **names), ()).fetchone()
            assert row is not None
            return self.stream.name, Aggregates.of(*row), {}
        rows = conn.execute(
            sql.SQL(BUCKETS_SQL).format(
                width=sql.Literal(self.bucket_ids),
                lo=sql.Literal(self.first_bucket * self.bucket_ids),
                hi=sql.Literal(self.end_bucket * self.bucket_ids),
                **names,
            ),
            (),
        ).fetchall()
        return self.stream.name, None, {int(r[0]): Aggregates.of(*r[1:]) for r in rows}


def _queries(streams: list[Stream], scopes: list[Scope]) -> list[AggregateQuery]:
    """Every query of the reconciliation, the largest last (the workers pop from the end)."""
    work = [AggregateQuery(s, since=scope.since) for s, scope in zip(streams, scopes, strict=True)]
    work = [w for w in work if w.since is not None]
    for stream, scope in zip(streams, scopes, strict=True):
        for first in range(scope.first_bucket, scope.end_bucket, BUCKETS_PER_QUERY):
            end = min(first + BUCKETS_PER_QUERY, scope.end_bucket)
            work.append(AggregateQuery(stream, None, first, end, scope.bucket_ids))
    work.sort(key=lambda w: w.end_bucket - w.first_bucket)
    return work
