"""How each PostgreSQL column type is parsed from CSV (Arrow) and stored in RAW (DuckDB)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")

# Types Arrow parses natively from PostgreSQL's CSV output; everything else travels as text and
# DuckDB casts it on insert, so a rare type never needs a Python-side conversion.
_DIRECT: dict[str, tuple[str, pa.DataType]] = {
    "bigint": ("BIGINT", pa.int64()),
    "integer": ("INTEGER", pa.int32()),
    "smallint": ("SMALLINT", pa.int16()),
    "real": ("FLOAT", pa.float32()),
    "double precision": ("DOUBLE", pa.float64()),
    "boolean": ("BOOLEAN", pa.bool_()),
    "timestamp with time zone": ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    "timestamp without time zone": ("TIMESTAMP", pa.timestamp("us")),
    "date": ("DATE", pa.date32()),
}
_VIA_TEXT: dict[str, str] = {
    "uuid": "UUID",
    "json": "JSON",
    "jsonb": "JSON",
    "time without time zone": "TIME",
    "interval": "INTERVAL",
}


@dataclass(frozen=True)
class SourceColumn:
    """A source column with its PostgreSQL type as `format_type` spells it."""

    name: str
    pg_type: str

    @property
    def duckdb_type(self) -> str:
        if self.pg_type in _DIRECT:
            return _DIRECT[self.pg_type][0]
        if m := _NUMERIC.fullmatch(self.pg_type):
            precision, scale = int(m.group(1)), int(m.group(2))
            # DuckDB decimals stop at 38 digits; wider ones keep their exact text.
            return f"DECIMAL({precision},{scale})" if precision <= 38 else "VARCHAR"
        # Unconstrained numeric has no fixed scale: keep the exact text rather than round it.
        return _VIA_TEXT.get(self.pg_type, "VARCHAR")

    @property
    def arrow_type(self) -> pa.DataType:
        if self.pg_type in _DIRECT:
            return _DIRECT[self.pg_type][1]
        if (m := _NUMERIC.fullmatch(self.pg_type)) and int(m.group(1)) <= 38:
            return pa.decimal128(int(m.group(1)), int(m.group(2)))
        return pa.string()


def quote(identifier: str) -> str:
    """A SQL identifier quoted for both PostgreSQL and DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'
