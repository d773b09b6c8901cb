"""The PII guarantee checked by value: no full PII value of the source appears in ANALYTICS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tests.transform import fixture

# Contract section 2: these columns never leave the staging layer in clear text.
PII_COLUMNS = {
    "users": ("password", "social_insurance_number"),
    "credit_cards": ("card_number",),
    "banks": ("account_number", "iban"),
}
TEXT_TYPES = ("varchar", "text", "string", "char", "character varying", "json")

Query = Callable[[str], list[tuple[Any, ...]]]


def pii_values(fx: fixture.Fixture) -> dict[str, set[str]]:
    """Every PII value of the source rows, by `table.column`."""
    return {
        f"{table}.{column}": {str(row[column]) for row in fx.rows[table] if row[column]}
        for table, columns in PII_COLUMNS.items()
        for column in columns
    }


def _forms(value: str) -> set[str]:
    # A model that only trims, recases or removes the spaces of a value still leaks it.
    return {value.lower(), "".join(value.split()).lower()}


def leaks(
    text_columns: Iterable[tuple[str, str, str]], query: Query, pii: dict[str, set[str]]
) -> list[str]:
    """`schema.table.column: pii column` for every text column holding a full PII value."""
    needles = {form: name for name, values in pii.items() for v in values for form in _forms(v)}
    found: list[str] = []
    for schema, table, column in text_columns:
        values = query(f'select distinct cast("{column}" as varchar) from {schema}."{table}"')
        for (value,) in values:
            if value is None:
                continue
            haystack = {value.lower(), "".join(value.split()).lower()}
            hit = next((n for n in needles if any(n in h for h in haystack)), None)
            if hit is not None:
                found.append(f"{schema}.{table}.{column}: {needles[hit]}")
                break
    return found
