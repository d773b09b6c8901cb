"""PII by value on the DuckDB build: no source password, SIN, card, account number or IBAN in ANALYTICS."""

from __future__ import annotations

from typing import Any

from tests.transform import pii
from tests.transform.conftest import LocalBuild
from tests.transform.test_local_build import query


def _text_columns(build: LocalBuild, catalog: str) -> list[tuple[str, str, str]]:
    types = ", ".join(f"'{t.upper()}'" for t in pii.TEXT_TYPES)
    return [
        (f"{catalog}.{schema}", table, column)
        for schema, table, column in query(
            build,
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_catalog = '{catalog}' and upper(data_type) in ({types}) "
            "order by all",
        )
    ]


def test_no_pii_value_of_the_source_appears_in_any_analytics_table_or_view(
    local_build: LocalBuild,
) -> None:
    assert local_build.outcome.success, local_build.outcome.statuses
    values = pii.pii_values(local_build.fixture)
    assert all(len(v) >= 8 for v in values.values()), values

    def run(sql: str) -> list[tuple[Any, ...]]:
        return query(local_build, sql)

    columns = _text_columns(local_build, "analytics")
    # Every layer is searched, views (staging) and tables (intermediate, marts) alike.
    assert {c[0] for c in columns} == {
        "analytics.staging",
        "analytics.intermediate",
        "analytics.finance",
    }
    assert pii.leaks(columns, run, values) == []


def test_the_search_finds_every_pii_column_where_it_is_in_clear(local_build: LocalBuild) -> None:
    """The same search over RAW finds each PII column: the check above can fail."""

    def run(sql: str) -> list[tuple[Any, ...]]:
        return query(local_build, sql)

    found = pii.leaks(_text_columns(local_build, "raw"), run, pii.pii_values(local_build.fixture))
    assert {leak.split(": ")[1] for leak in found} == set(pii.pii_values(local_build.fixture))
