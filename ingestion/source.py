"""Reads streams from the source PostgreSQL in one consistent snapshot, as Arrow tables via COPY."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv
from psycopg import sql

from ingestion.catalog import SOURCE_SCHEMA, Stream
from ingestion.errors import SourceSchemaError, SourceUnavailable
from ingestion.types import SourceColumn

# Rows travel in chunks of about this many CSV bytes, so Arrow parses and DuckDB writes one chunk
# while PostgreSQL is still sending the next.
CHUNK_BYTES = 32 << 20

# Both engines compute this checksum the same way; the two moduli keep the product inside bigint.
CHECKSUM_SQL = """
select count(*), coalesce(sum(k), 0), coalesce(sum(us), 0),
       coalesce(sum((k %% 1000003) * (us %% 1000033)), 0)
from (select {pk}::bigint as k,
             round(date_part('epoch', {cursor}) * 1000000)::bigint as us
      from {table}) as s
"""


@dataclass(frozen=True)
class Aggregates:
    """Row count and a checksum over (primary key, cursor) of one table."""

    rows: int
    checksum: int

    @classmethod
    def of(cls, rows: int, sum_key: int, sum_cursor: int, sum_mixed: int) -> Aggregates:
        mixed = (int(sum_key) * 1_000_000_007 + int(sum_cursor) * 998_244_353 + int(sum_mixed)) % (
            1 << 64
        )
        return cls(int(rows), mixed)


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


class SourceReader:
    """A read-only REPEATABLE READ transaction on the source: every stream comes from one snapshot."""

    def __init__(self, conninfo: str, connect_timeout: int = 5) -> None:
        self._conninfo = conninfo
        self._timeout = connect_timeout
        self.where = _describe(conninfo)
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> SourceReader:
        try:
            conn = psycopg.connect(self._conninfo, connect_timeout=self._timeout, autocommit=True)
            # UTC and ISO keep the CSV text exactly what Arrow parses into timestamptz.
            conn.execute("set timezone = 'UTC'")
            conn.execute("set datestyle = 'ISO, YMD'")
            conn.execute("set bytea_output = 'hex'")
            conn.execute("begin isolation level repeatable read read only")
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

    def columns(self, stream: Stream) -> list[SourceColumn]:
        """The table's columns in source order, as of this snapshot."""
        rows = self._execute(
            """
            select a.attname, format_type(a.atttypid, a.atttypmod)
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
            order by a.attnum
            """,
            (SOURCE_SCHEMA, stream.name),
        )
        columns = [SourceColumn(name, pg_type) for name, pg_type in rows]
        names = {c.name for c in columns}
        if not columns:
            raise SourceSchemaError(
                f"The source has no table {stream.source_table} (stream {stream.name!r}).",
                "Nothing was written: RAW and every saved cursor are unchanged.",
                "Create the source schema (`mdp generate` does) or remove the stream from "
                "ingestion/catalog.py.",
            )
        missing = [c for c in (*stream.primary_key, stream.cursor_field) if c not in names]
        if missing:
            raise SourceSchemaError(
                f"{stream.source_table} has no column(s) {', '.join(missing)} that the catalog "
                f"declares as primary key or cursor of stream {stream.name!r}.",
                "Nothing was written: RAW and every saved cursor are unchanged.",
                "Fix the stream declaration in ingestion/catalog.py or the source table.",
            )
        return columns

    def read(
        self, stream: Stream, columns: list[SourceColumn], since: datetime | None
    ) -> Iterator[pa.Table]:
        """Rows with cursor >= `since` (all rows when None), as Arrow tables of about CHUNK_BYTES."""
        select = sql.SQL("select {cols} from {table}").format(
            cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            table=sql.Identifier(SOURCE_SCHEMA, stream.name),
        )
        if since is not None:
            select = sql.SQL("{select} where {cursor} >= {since}").format(
                select=select, cursor=sql.Identifier(stream.cursor_field), since=sql.Literal(since)
            )
        statement = sql.SQL("copy ({select}) to stdout (format csv)").format(select=select)
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
        for chunk in self._copy_chunks(statement):
            try:
                yield pcsv.read_csv(
                    pa.py_buffer(chunk),
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

    def _copy_chunks(self, statement: sql.Composed) -> Iterator[bytes]:
        """COPY output in row-aligned chunks, read on a thread so the caller works concurrently."""
        chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            try:
                with self.conn.cursor() as cur, cur.copy(statement) as copy:
                    buffer = bytearray()
                    # Each COPY message is one row: this loop only appends bytes, the parsing
                    # happens in Arrow.
                    for data in copy:
                        buffer += data
                        if len(buffer) >= CHUNK_BYTES:
                            if stop.is_set():
                                return
                            chunks.put(bytes(buffer))
                            buffer.clear()
                    if buffer:
                        chunks.put(bytes(buffer))
                chunks.put(None)
            except BaseException as exc:
                chunks.put(exc)

        thread = threading.Thread(target=produce, name="copy-reader", daemon=True)
        thread.start()
        try:
            while (item := chunks.get()) is not None:
                if isinstance(item, psycopg.OperationalError):
                    raise _unavailable(self.where, item) from item
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # Unblock the reader if the consumer stopped early, then wait for the COPY to end.
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.05)
            thread.join()

    def aggregates(self, stream: Stream) -> Aggregates:
        """Row count and checksum of the whole table in this snapshot."""
        query = sql.SQL(CHECKSUM_SQL).format(
            pk=sql.Identifier(stream.primary_key[0]),
            cursor=sql.Identifier(stream.cursor_field),
            table=sql.Identifier(SOURCE_SCHEMA, stream.name),
        )
        ((rows, sum_key, sum_cursor, sum_mixed),) = self._execute(query)
        return Aggregates.of(rows, sum_key, sum_cursor, sum_mixed)
