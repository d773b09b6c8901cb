"""Bulk writes to the source through COPY: never one INSERT per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from source_generator.schema import SCHEMA, TABLES


def copy_statement(
    table: str, schema: str = SCHEMA, columns: Sequence[str] | None = None
) -> sql.Composed:
    columns = columns or [c.name for c in TABLES[table]]
    return sql.SQL("copy {}.{} ({}) from stdin").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )


def copy_rows(
    conn: psycopg.Connection[Any],
    table: str,
    rows: Iterable[Sequence[Any]],
    schema: str = SCHEMA,
    keep: list[Any] | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """COPY `rows` (tuples in the column order of `schema.TABLES[table]`) into the table.

    `rows` may be a generator: it is consumed while COPY streams, and each row is also
    appended to `keep` when given. `columns` names the columns of a table outside `TABLES`.
    """
    with conn.cursor() as cur, cur.copy(copy_statement(table, schema, columns)) as copy:
        write = copy.write_row
        if keep is None:
            for row in rows:
                write(row)
        else:
            append = keep.append
            for row in rows:
                write(row)
                append(row)


def copy_binary(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """COPY `rows` in PostgreSQL's binary format: cheaper to encode than text for numbers and
    timestamps. For the generator's own tables; the app's tables are written as text."""
    statement = sql.SQL("copy {}.{} ({}) from stdin (format binary)").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(types))
        write = copy.write_row
        for row in rows:
            write(row)
