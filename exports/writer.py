"""Write the marts and `fct_payments` as Hive-partitioned zstd Parquet, one file per partition."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core import paths
from core.warehouse import (
    CONTRACT_MARTS,
    PAYMENTS_FACT,
    NoDataYet,
    TableRef,
    Warehouse,
    WarehouseError,
    WarehouseSession,
    is_empty,
)
from core.warehouse import from_env as warehouse_from_env

log = logging.getLogger(__name__)

MONTH_KEY = "year_month"
# Readers (pyarrow, pandas, DuckDB, Spark, Athena) read this name as a NULL partition value.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
DATA_FILE = "data.parquet"
# Per table folder: each partition file's content digest and size as the last export wrote it.
# Readers skip it (pyarrow and pandas ignore names starting with `_`; globs ask for *.parquet).
STATE_FILE = "_mdp_export.json"
# Part of every digest: a change to how files are written rewrites every partition once.
WRITE_FORMAT = "zstd+delta/1"
TARGET_ENV = "MDP_EXPORTS_TARGET"
S3_REGION_ENV = "MDP_EXPORTS_S3_REGION"
S3_ENDPOINT_ENV = "MDP_EXPORTS_S3_ENDPOINT"


@dataclass(frozen=True)
class Partitioning:
    """How a table is split into Hive partitions.

    `month`: the key `year_month=YYYY-MM` (UTC) is derived from `column`, which stays in the files.
    `value`: the key is `column` itself, which moves from the files into the path, as Hive does.
    """

    kind: str
    column: str

    @property
    def key(self) -> str:
        return MONTH_KEY if self.kind == "month" else self.column


# Time-series tables grow by month, so a re-run rewrites only what changed and readers prune
# by month; the all-time table has one row per plan, so plan is its only useful split.
KNOWN: dict[str, Partitioning] = {
    PAYMENTS_FACT: Partitioning("month", "paid_at"),
    "net_revenue_by_plan": Partitioning("value", "plan_name"),
    "monthly_net_revenue_by_plan": Partitioning("month", "revenue_month"),
    "mrr_by_plan": Partitioning("month", "month"),
}


def partitioning_for(name: str, schema: pa.Schema) -> Partitioning | None:
    """The declared split if its column exists, else by a month-like column, else by plan."""
    known = KNOWN.get(name)
    if known is not None and known.column in schema.names:
        return known
    temporal = [f.name for f in schema if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type)]
    for col in temporal:
        if col == "month" or col.endswith("_month"):
            return Partitioning("month", col)
    if "plan_name" in schema.names:
        return Partitioning("value", "plan_name")
    if temporal:
        return Partitioning("month", temporal[0])
    return None


@dataclass(frozen=True)
class TableExport:
    """What one table's export wrote."""

    table: str
    source: str
    rows: int
    partition_key: str | None
    partitions: tuple[str, ...]
    files_removed: int = 0
    # Partitions whose rows changed since the last export (all of them on a first export); the
    # others are the same rows, and their files are kept as they are.
    partitions_written: int = 0


@dataclass
class ExportResult:
    """What a whole export wrote, and where."""

    target: str
    tables: list[TableExport] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def resolve_target(target: str | os.PathLike[str] | None) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, base path in it, display URI) for a local folder or an `s3://bucket/prefix`.

    Without a target: `MDP_EXPORTS_TARGET` (set on the cloud hosts to the exports bucket),
    else the local exports folder.
    """
    if target is None:
        target = os.environ.get(TARGET_ENV) or None
    if target is None:
        default = str(paths.exports_dir())
        return pafs.LocalFileSystem(), default, default
    text = os.fspath(target)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{text!r} names no bucket; use s3://<bucket>/<prefix>.")
        # An explicit region avoids a bucket-region lookup; credentials come from the default
        # chain (the Airflow host's instance profile), never from this repository.
        fs = pafs.S3FileSystem(
            region=os.environ.get(S3_REGION_ENV) or os.environ.get("AWS_REGION") or None,
            endpoint_override=os.environ.get(S3_ENDPOINT_ENV) or None,
        )
        key = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return fs, key, f"s3://{key}"
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"{text!r}: only local folders and s3:// URIs are export targets.")
    folder = Path(text).expanduser().resolve()
    if not folder.parent.is_dir() and folder != paths.exports_dir():
        # A typo in the path should not grow a new directory tree somewhere unexpected; the
        # default folder, under the local state folder, is created with its parents.
        raise ValueError(
            f"Nothing exported: the folder {folder.parent} (parent of the target {folder}) "
            f"does not exist. Create it first (`mkdir -p {folder.parent}`) or choose another "
            "--target; the export creates only the last folder of the path."
        )
    return pafs.LocalFileSystem(), str(folder), str(folder)


class ExportTargetError(OSError):
    """Writing to the export target failed; the message names the likely cause and the fix."""


def _s3_failure(shown: str, error: OSError) -> ExportTargetError:
    return ExportTargetError(
        f"Could not write the export to {shown}: {error}\n"
        "Nothing in the warehouse changed; each partition already written was replaced whole, "
        "and the others keep their previous export. Check, in this order: AWS credentials "
        "(AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the host's instance "
        f"role); the bucket's region ({S3_REGION_ENV} or AWS_REGION); for an S3-compatible "
        f"store or a VPC endpoint, its address ({S3_ENDPOINT_ENV}). Then run `mdp export` again."
    )


def _partition_values(table: pa.Table, spec: Partitioning) -> pa.Array:
    """Each row's `value` partition: the column as text, null as Hive's NULL partition."""
    col = table.column(spec.column).cast(pa.string())
    return pc.fill_null(col, NULL_PARTITION).combine_chunks()


def _as_utc(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A date or timestamp column as UTC timestamps (a timestamp without a zone is UTC)."""
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp(col.type.unit, tz="UTC"))
    return col.cast(pa.timestamp("s"))


def _month_keys(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`YYYY-MM` (UTC) of each value; null stays null."""
    return pc.strftime(_as_utc(col), format="%Y-%m")


def _split_by_month(table: pa.Table, spec: Partitioning) -> dict[str, pa.Table]:
    """Month partitions, each sorted by the column: one sort of the whole table.

    Rows of the same month are consecutive in the sort, so only each month's first value is
    formatted. The sort is stable: rows with equal values keep the warehouse's order, as a
    filter per month followed by a sort of each month would give. Each partition is taken into
    arrays of its own, so its digest depends on its rows only.
    """
    # Nulls sort last, the default of every pyarrow this runs on (MWAA's is 21).
    order = pc.sort_indices(table, sort_keys=[(spec.column, "ascending")])
    col = table.column(spec.column).take(order)
    valued = len(col) - col.null_count
    parts: dict[str, pa.Table] = {}
    if valued:
        utc = _as_utc(col.slice(0, valued))
        months = pc.add(pc.multiply(pc.year(utc), 12), pc.month(utc)).combine_chunks()
        changes = pc.indices_nonzero(pc.not_equal(months.slice(1), months.slice(0, valued - 1)))
        starts = [0, *(i + 1 for i in changes.to_pylist())]
        keys = _month_keys(col.take(starts)).to_pylist()
        for start, end, key in zip(starts, [*starts[1:], valued], keys, strict=True):
            parts[f"{spec.key}={quote(key, safe='')}"] = table.take(order.slice(start, end - start))
    if valued < len(col):
        parts[f"{spec.key}={quote(NULL_PARTITION, safe='')}"] = table.take(order.slice(valued))
    return dict(sorted(parts.items()))


def _split(table: pa.Table, spec: Partitioning | None) -> dict[str, pa.Table]:
    """Partition directory name -> rows; the key column leaves `value` partitions."""
    if spec is None:
        return {"": table}
    if spec.kind == "month":
        return _split_by_month(table, spec)
    keys = _partition_values(table, spec)
    body = table.drop_columns([spec.column])
    parts: dict[str, pa.Table] = {}
    for value in sorted(pc.unique(keys).to_pylist()):
        parts[f"{spec.key}={quote(value, safe='')}"] = body.filter(pc.equal(keys, value))
    return parts


def _write_parquet(sink: object, table: pa.Table, compression_level: int | None) -> None:
    # Ids and timestamps are near-sorted within a month: delta encoding stores their small
    # steps in a few bits, where plain encoding plus zstd keeps most of the 8 bytes.
    delta = [
        f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)
    ]
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=compression_level,
        use_dictionary=[n for n in table.column_names if n not in delta],
        column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
    )


def _write_atomically(
    fs: pafs.FileSystem, path: str, table: pa.Table, compression_level: int | None
) -> None:
    directory = path.rsplit("/", 1)[0]
    # S3 keys need no parent directory, and creating one would add an empty marker object.
    if not isinstance(fs, pafs.S3FileSystem):
        fs.create_dir(directory, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        # Hidden name: readers skip it while it is written, and the rename replaces the old
        # file in one step, so a reader sees the old partition or the new one, never both.
        tmp = f"{directory}/.{DATA_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            with fs.open_output_stream(tmp) as sink:
                _write_parquet(sink, table, compression_level)
            fs.move(tmp, path)
        except BaseException:
            if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                fs.delete_file(tmp)
            raise
    else:
        # An object store PUT is already atomic: readers see the old object or the new one.
        with fs.open_output_stream(path) as sink:
            _write_parquet(sink, table, compression_level)


def _digest(table: pa.Table, compression_level: int | None) -> str:
    """A digest of the partition's rows, in order, and of how its file is written."""
    digest = hashlib.blake2b(f"{WRITE_FORMAT}:{compression_level}".encode(), digest_size=16)
    sink = pa.BufferOutputStream()
    # One chunk per column: the same rows serialise to the same bytes however they were read.
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    digest.update(sink.getvalue())
    return digest.hexdigest()


def _files_in(fs: pafs.FileSystem, table_dir: str) -> list[pafs.FileInfo]:
    return list(
        fs.get_file_info(pafs.FileSelector(table_dir, allow_not_found=True, recursive=True))
    )


def _read_state(fs: pafs.FileSystem, path: str) -> dict[str, dict[str, object]]:
    """The last export's record of the table's files; empty when absent or unreadable."""
    try:
        with fs.open_input_stream(path) as f:
            state = json.loads(f.read())
        files = state.get("files", {})
        return files if isinstance(files, dict) else {}
    except FileNotFoundError:
        # A first export, or one from before the record: every partition is written.
        return {}
    except (OSError, ValueError, AttributeError) as error:
        # Unreadable or not ours: writing every partition again is always correct, only slower.
        log.warning(
            "Could not read %s (%s); every partition of this table is written again.", path, error
        )
        return {}


def _write_state(fs: pafs.FileSystem, path: str, files: dict[str, dict[str, object]]) -> None:
    body = json.dumps({"files": files}, indent=1, sort_keys=True).encode()
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(tmp) as sink:
            sink.write(body)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as sink:
            sink.write(body)


def _remove_stale(fs: pafs.FileSystem, info: list[pafs.FileInfo], keep: set[str]) -> int:
    """Delete files of partitions the warehouse no longer has; return how many were deleted."""
    removed = 0
    for entry in info:
        if entry.type == pafs.FileType.File and entry.path not in keep:
            fs.delete_file(entry.path)
            removed += 1
    if isinstance(fs, pafs.LocalFileSystem):
        dirs = [e.path for e in info if e.type == pafs.FileType.Directory]
        for d in sorted(dirs, key=len, reverse=True):
            if os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
    return removed


def export_table(
    fs: pafs.FileSystem,
    base: str,
    name: str,
    table: pa.Table,
    *,
    source: str = "",
    compression_level: int | None = None,
) -> TableExport:
    """Write one table under `base/name/`, replacing changed partitions and dropping stale ones.

    A partition whose rows are the same as at the last export, with its file still there at the
    size that export wrote, is kept as it is: a daily export rewrites the months that changed,
    not the whole history.
    """
    spec = partitioning_for(name, table.schema)
    table_dir = fs.normalize_path(f"{base}/{name}")
    state_path = fs.normalize_path(f"{table_dir}/{STATE_FILE}")
    before = _read_state(fs, state_path)
    # One listing serves both the size check and, after the writes, the stale-file sweep: what
    # this export writes is in `kept`, and the folders it creates are not empty.
    listing = _files_in(fs, table_dir)
    present = {e.path: e.size for e in listing if e.type == pafs.FileType.File}
    kept: set[str] = {state_path}
    files: dict[str, dict[str, object]] = {}
    written = 0
    parts = _split(table, spec)
    for directory, rows in parts.items():
        relative = f"{directory}/{DATA_FILE}" if directory else DATA_FILE
        path = fs.normalize_path(f"{table_dir}/{relative}")
        digest = _digest(rows, compression_level)
        last = before.get(relative, {})
        size = present.get(path)
        if last.get("digest") != digest or size is None or size != last.get("size"):
            _write_atomically(fs, path, rows, compression_level)
            written += 1
            size = fs.get_file_info(path).size
        files[relative] = {"digest": digest, "size": size}
        kept.add(path)
    removed = _remove_stale(fs, listing, kept)
    _write_state(fs, state_path, files)
    return TableExport(
        table=name,
        source=source,
        rows=table.num_rows,
        partition_key=spec.key if spec else None,
        partitions=tuple(d for d in parts if d),
        files_removed=removed,
        partitions_written=written,
    )


def _read_tables(
    session: WarehouseSession, only: Sequence[str] | None
) -> list[tuple[str, TableRef, pa.Table]]:
    refs: dict[str, TableRef] = {t.name.lower(): t for t in session.marts()}
    fact = session.find(PAYMENTS_FACT)
    if fact is not None:
        refs[PAYMENTS_FACT] = fact
    missing = [m for m in (*CONTRACT_MARTS, PAYMENTS_FACT) if m not in refs]
    if missing:
        raise NoDataYet(
            f"Nothing exported: the warehouse has no {', '.join(missing)} yet, and the "
            "previous export was left as it was. Build the marts first (`make demo` or the "
            "Airflow DAG), then run `mdp export` again."
        )
    names = sorted(refs)
    if only:
        unknown = [n for n in only if n.lower() not in refs]
        if unknown:
            raise WarehouseError(
                f"Nothing exported: no table {', '.join(unknown)} in the warehouse; "
                f"the exportable tables are {', '.join(names)}."
            )
        names = [n.lower() for n in only]
    return [(n, refs[n], session.read(refs[n])) for n in names]


def export_marts(
    target: str | os.PathLike[str] | None = None,
    *,
    warehouse: Warehouse | None = None,
    tables: Sequence[str] | None = None,
    filesystem: pafs.FileSystem | None = None,
    compression_level: int | None = None,
) -> ExportResult:
    """Export `fct_payments` and every FINANCE mart to `target` (default: `MDP_EXPORTS_TARGET`,
    else `.local/exports/`).

    `target` is a local folder or `s3://bucket/prefix`; with `filesystem`, it is a path in that
    filesystem. Each partition is one file, replaced atomically, so a re-run never duplicates
    rows; partitions the warehouse no longer has are removed after the new ones are written.
    """
    wh = warehouse if warehouse is not None else warehouse_from_env()
    if filesystem is not None:
        fs, base = filesystem, os.fspath(target or "exports").rstrip("/")
        shown = base
    else:
        fs, base, shown = resolve_target(target)
    # Read everything first and close the session, so a DuckDB reader holds the file only
    # briefly and dbt is never blocked by a slow upload.
    with wh.session() as session:
        loaded = _read_tables(session, tables)
    if is_empty({name: table for name, _, table in loaded}):
        raise NoDataYet(
            "Nothing exported: every table is empty, and the previous export was left as it "
            "was. Load the source and build the marts, then run `mdp export` again."
        )
    result = ExportResult(target=shown)
    try:
        for name, ref, table in loaded:
            result.tables.append(
                export_table(
                    fs,
                    base,
                    name,
                    table,
                    source=f"{ref.schema}.{ref.name}",
                    compression_level=compression_level,
                )
            )
    except OSError as error:
        # The SDK's own message (a network error, an access denial) does not say what to check.
        if isinstance(fs, pafs.S3FileSystem):
            raise _s3_failure(shown, error) from error
        raise
    return result
