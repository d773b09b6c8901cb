"""Read-only access to the FINANCE marts: the local DuckDB `ANALYTICS` file or Snowflake."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from core import paths
from core.target import TARGET_ENV, UnknownTarget, current_target

# The three marts checked to the cent by the data contract; the dashboard needs only these.
CONTRACT_MARTS = ("net_revenue_by_plan", "monthly_net_revenue_by_plan", "mrr_by_plan")
PAYMENTS_FACT = "fct_payments"

FINANCE_SCHEMA_ENV = "MDP_FINANCE_SCHEMA"

# dbt writes the DuckDB file in short transactions; waiting this long covers most of them
# before telling the reader the warehouse is busy.
LOCK_WAIT_SECONDS = 3.0


class WarehouseError(RuntimeError):
    """A warehouse problem the reader can act on; the message says what to do next."""


class WarehouseBusy(WarehouseError):
    """The DuckDB file is locked by a writer (dbt building the marts)."""


class NoDataYet(WarehouseError):
    """The warehouse or the marts do not exist yet, or hold no rows."""


class WarehouseDamaged(WarehouseError):
    """The DuckDB file exists but cannot be read: truncated, overwritten or not DuckDB at all."""


# What DuckDB says when a file is truncated, overwritten or was never a database. A lock held by
# another process says "Could not set lock" instead, and is not damage.
_DAMAGE_MARKERS = (
    "could not read enough bytes",
    "not a valid duckdb database",
    "corrupt",
    "checksum",
    "invalid block",
    "failed to read database header",
)


def is_damage(error: BaseException) -> bool:
    """True when a DuckDB error means the file is unreadable, not merely locked or busy."""
    text = str(error).lower()
    return "lock" not in text and any(marker in text for marker in _DAMAGE_MARKERS)


def move_aside(path: Path) -> Path:
    """Rename a damaged DuckDB file (and its WAL) to `<name>.damaged-<UTC time>`; return the new path.

    Nothing is deleted: the file stays beside the new one, for a look or a backup restore.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(aside)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.rename(aside.with_name(aside.name + ".wal"))
    return aside


def damaged_message(path: Path, error: BaseException | str, rebuild: str) -> str:
    """What happened, what was kept, and the command that rebuilds the file from its source."""
    return (
        f"The DuckDB file {path} is damaged and cannot be read ({error}). Nothing was changed: "
        f"the file is left as it is. Rebuild it from its source with `{rebuild}`: it moves the "
        "damaged file aside (renamed *.damaged-<time>, not deleted) and builds a new one."
    )


def damage(path: Path) -> str | None:
    """Why the DuckDB file at `path` cannot be read, or None when it can (or is missing or locked).

    Besides opening it, compares its size with the blocks its header lists: a file cut short
    (a full disk, an interrupted copy) often opens and fails only when a missing block is read.
    """
    import duckdb

    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            row = con.execute(
                "select block_size, total_blocks from pragma_database_size()"
            ).fetchone()
        finally:
            con.close()
    except duckdb.Error as exc:
        return str(exc) if is_damage(exc) else None
    # Three 4 KiB headers, then the blocks.
    expected = 3 * 4096 + int(row[0]) * int(row[1]) if row else 0
    size = path.stat().st_size
    if size < expected:
        return f"the file has {size:,} bytes where its header lists {expected:,}: it was cut short"
    return None


def check_readable(path: Path, rebuild: str) -> None:
    """Raise WarehouseDamaged (naming the `rebuild` command) if the DuckDB file is damaged."""
    reason = damage(path)
    if reason is not None:
        raise WarehouseDamaged(damaged_message(path, reason, rebuild))


# The command that rebuilds each local warehouse file from its source.
REBUILD_RAW = "mdp sync --full-refresh"
REBUILD_ANALYTICS = "mdp transform --full-refresh"


@dataclass(frozen=True)
class TableRef:
    """Where a table lives: its schema and its name, spelled as the warehouse spells them."""

    schema: str
    name: str

    @property
    def sql(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Warehouse(Protocol):
    """What the dashboard and the exports need from a warehouse."""

    @property
    def description(self) -> str: ...

    def session(self) -> AbstractContextManager[WarehouseSession]: ...


@dataclass
class WarehouseSession:
    """One open, read-only connection; keep it short so writers are never blocked for long."""

    run: Callable[[str], pa.Table]
    finance_schema: str
    _tables: list[TableRef] | None = field(default=None, init=False)

    def tables(self) -> list[TableRef]:
        if self._tables is None:
            listing = self.run(
                "select table_schema, table_name from information_schema.tables "
                "where lower(table_schema) <> 'information_schema'"
            )
            self._tables = [
                TableRef(str(s), str(n))
                for s, n in zip(
                    listing.column(0).to_pylist(), listing.column(1).to_pylist(), strict=True
                )
            ]
        return self._tables

    def find(self, name: str) -> TableRef | None:
        """The table called `name`, preferring the finance schema, then any `*finance` schema."""
        matches = [t for t in self.tables() if t.name.lower() == name.lower()]
        if not matches:
            return None
        finance = self.finance_schema.lower()

        def rank(t: TableRef) -> tuple[int, str]:
            schema = t.schema.lower()
            if schema == finance:
                return (0, schema)
            if schema.endswith(finance):
                return (1, schema)
            return (2, schema)

        return sorted(matches, key=rank)[0]

    def marts(self) -> list[TableRef]:
        """Every table in the schema that holds the contract marts."""
        anchor = self.find(CONTRACT_MARTS[0])
        if anchor is None:
            return []
        return sorted((t for t in self.tables() if t.schema == anchor.schema), key=lambda t: t.name)

    def read(self, table: TableRef, columns: Iterable[str] | None = None) -> pa.Table:
        cols = ", ".join(_quote(c) for c in columns) if columns else "*"
        result = self.run(f"select {cols} from {table.sql}")
        # Snowflake returns upper-case names; the contract spells columns in lower case.
        return result.rename_columns([c.lower() for c in result.column_names])

    def read_required(self, names: Iterable[str]) -> dict[str, pa.Table]:
        """The named tables, or `NoDataYet` naming those that are missing or empty."""
        found: dict[str, pa.Table] = {}
        missing: list[str] = []
        for name in names:
            ref = self.find(name)
            if ref is None:
                missing.append(name)
                continue
            found[name] = self.read(ref)
        if missing:
            raise NoDataYet(
                f"No data yet: the warehouse has no {', '.join(missing)} "
                f"(looked in every schema, preferring `{self.finance_schema}`). "
                "The dbt project has not built the marts yet; run the pipeline "
                "(`make demo` locally, or the Airflow DAG) and reload."
            )
        if is_empty(found):
            raise NoDataYet(
                "No data yet: the marts exist but hold no rows. The source has not been "
                "loaded yet; run the pipeline (`make demo` locally, or the Airflow DAG) and reload."
            )
        return found


def is_empty(tables: Mapping[str, pa.Table]) -> bool:
    """Nothing loaded yet: no rows anywhere but the all-time mart's zero row per plan."""
    return all(t.num_rows == 0 for name, t in tables.items() if name != CONTRACT_MARTS[0])


def finance_schema() -> str:
    return os.environ.get(FINANCE_SCHEMA_ENV, "finance")


@dataclass
class DuckDBWarehouse:
    """The local `ANALYTICS` DuckDB file, opened read-only for each short session."""

    path: Path = field(default_factory=paths.analytics_db)
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    schema: str = field(default_factory=finance_schema)

    @property
    def description(self) -> str:
        return f"DuckDB {self.path}"

    @contextmanager
    def session(self) -> Iterator[WarehouseSession]:
        import duckdb

        if not self.path.exists():
            raise NoDataYet(
                f"No data yet: the warehouse file {self.path} does not exist. "
                "Run the pipeline (`make demo`) to build it, then reload."
            )
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                break
            except duckdb.Error as exc:
                if is_damage(exc):
                    raise WarehouseDamaged(
                        damaged_message(self.path, exc, REBUILD_ANALYTICS)
                    ) from exc
                if "lock" not in str(exc).lower():
                    raise WarehouseError(
                        f"Could not open the warehouse file {self.path}: {exc}. "
                        "Nothing was changed; check the file, or rebuild it with `make demo`."
                    ) from exc
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"The warehouse {self.path} is being refreshed right now: another "
                        "process (dbt) holds its write lock. Nothing was read or changed; "
                        "try again in a minute, when the run has finished."
                    ) from exc
                time.sleep(0.25)

        def run(sql: str) -> pa.Table:
            try:
                return con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                # A file cut short can open and fail only when a missing block is read.
                if is_damage(exc):
                    raise WarehouseDamaged(
                        damaged_message(self.path, exc, REBUILD_ANALYTICS)
                    ) from exc
                raise

        try:
            yield WarehouseSession(run=run, finance_schema=self.schema)
        finally:
            con.close()


# Key-pair auth for the reporting role; the private key stays in a file the host owns.
SNOWFLAKE_ENV = {
    "account": "MDP_SNOWFLAKE_ACCOUNT",
    "user": "MDP_SNOWFLAKE_USER",
    "private_key_file": "MDP_SNOWFLAKE_PRIVATE_KEY_PATH",
    "private_key_file_pwd": "MDP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    "role": "MDP_SNOWFLAKE_ROLE",
    "warehouse": "MDP_SNOWFLAKE_WAREHOUSE",
    "database": "MDP_SNOWFLAKE_DATABASE",
}
SNOWFLAKE_DEFAULTS = {"role": "REPORTER", "database": "ANALYTICS"}
SNOWFLAKE_REQUIRED = ("account", "user", "private_key_file", "warehouse")


def snowflake_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Connection settings from the environment, or a `WarehouseError` naming what is missing."""
    env = os.environ if env is None else env
    settings = dict(SNOWFLAKE_DEFAULTS)
    for key, var in SNOWFLAKE_ENV.items():
        if env.get(var):
            settings[key] = env[var]
    missing = [SNOWFLAKE_ENV[k] for k in SNOWFLAKE_REQUIRED if k not in settings]
    if missing:
        raise WarehouseError(
            f"Snowflake is selected ({TARGET_ENV}=cloud) but {', '.join(missing)} "
            "is not set. Nothing was read. Set them (the private key file is the reporting "
            "user's key-pair) or unset MDP_TARGET to read the local DuckDB warehouse."
        )
    return settings


@dataclass
class SnowflakeWarehouse:
    """`ANALYTICS` in Snowflake, read with the reporting role over key-pair (JWT) auth."""

    settings: dict[str, Any]
    schema: str = field(default_factory=finance_schema)

    @classmethod
    def from_env(cls) -> SnowflakeWarehouse:
        return cls(settings=snowflake_settings())

    @property
    def description(self) -> str:
        return f"Snowflake {self.settings.get('account', '')}/{self.settings.get('database')} as {self.settings.get('role')}"

    @contextmanager
    def session(self) -> Iterator[WarehouseSession]:
        import snowflake.connector

        kwargs = dict(self.settings)
        if "private_key_file" in kwargs:
            kwargs.setdefault("authenticator", "SNOWFLAKE_JWT")
        try:
            con = snowflake.connector.connect(**kwargs)
        except snowflake.connector.errors.Error as exc:
            raise WarehouseError(
                f"Could not connect to {self.description}: {exc.msg}. Nothing was read; "
                "check the account, user, key file and that the role is granted to the user."
            ) from exc
        try:
            cur = con.cursor()

            def run(sql: str) -> pa.Table:
                cur.execute(sql)
                return _cursor_to_arrow(cur)

            yield WarehouseSession(run=run, finance_schema=self.schema)
        finally:
            con.close()


def _cursor_to_arrow(cur: Any) -> pa.Table:
    names = [d[0] for d in cur.description]
    try:
        table = cur.fetch_arrow_all()
    except Exception:
        table = None
    if table is None or not isinstance(table, pa.Table):
        rows = cur.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
    return table


def from_env() -> Warehouse:
    """The warehouse this process should read: Snowflake when `MDP_TARGET=cloud`, else DuckDB."""
    try:
        target = current_target()
    except UnknownTarget as error:
        raise WarehouseError(str(error)) from None
    if target == "cloud":
        return SnowflakeWarehouse.from_env()
    return DuckDBWarehouse()
