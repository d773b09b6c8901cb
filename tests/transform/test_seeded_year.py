"""A seeded year through the loader and dbt on DuckDB: the checked marts equal the contract oracle to the cent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from source_generator import GeneratorConfig
from tests import contract_marts
from tests.seeded_history import build_seeded_history

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The demo's year of history at a small volume: the contract's default dirt and billing rates
# (monthly and annual subscriptions, failures, dunning, refunds), a few hundred subscriptions.
CONFIG = GeneratorConfig(rows_per_cycle=3, seed=2026)
MONTHS = 12
QUARANTINE_REASONS = {
    "unparseable_amount",
    "negative_amount",
    "duplicate_charge",
    "orphan_subscription",
}


@dataclass(frozen=True)
class SeededYear:
    warehouse: Path
    expected: contract_marts.ContractMarts
    start: datetime


@pytest.fixture(scope="module")
def seeded_year(
    tmp_path_factory: pytest.TempPathFactory, source_db_factory: Callable[[], str]
) -> Iterator[SeededYear]:
    """A year generated into PostgreSQL, synced to RAW by the loader, built by `dbt build`; the
    oracle reads the PostgreSQL source itself, not anything the loader or dbt wrote."""
    home = tmp_path_factory.mktemp("seeded_year") / "home"
    dsn = source_db_factory()
    start = build_seeded_history(home, dsn, CONFIG, MONTHS)
    with psycopg.connect(dsn) as conn:
        expected = contract_marts.compute(conn)
    yield SeededYear(home / "warehouse" / "analytics.duckdb", expected, start)


def _rows(year: SeededYear, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(year.warehouse), read_only=True) as con:
        # Staging models are views over RAW.
        con.execute(f"attach '{year.warehouse.with_name('raw.duckdb')}' as raw (read_only)")
        return con.execute(sql).fetchall()


def test_the_year_has_every_month_billing_period_and_kind_of_dirt(seeded_year: SeededYear) -> None:
    months = {m for m, _ in seeded_year.expected.monthly_net_revenue_by_plan}
    first = seeded_year.start.date()
    assert min(months) == date(first.year, first.month, 1)
    assert len(months) >= MONTHS + 1  # the twelve months before this one, and this one
    periods = _rows(
        seeded_year,
        "select billing_period, count(*) from intermediate.dim_subscriptions group by all",
    )
    assert {p for p, n in periods if n > 0} == {"monthly", "annual"}
    reasons = _rows(
        seeded_year,
        "select distinct reason from staging.stg_postgres_airbyte__quarantined_rows "
        "where source_table = 'payments'",
    )
    assert {r for (r,) in reasons} == QUARANTINE_REASONS


def test_net_revenue_by_plan_equals_the_oracle_to_the_cent(seeded_year: SeededYear) -> None:
    mart = {
        plan: (Decimal(revenue), count)
        for plan, revenue, count in _rows(
            seeded_year,
            "select plan_name, net_revenue, succeeded_payments from finance.net_revenue_by_plan",
        )
    }
    assert mart == seeded_year.expected.net_revenue_by_plan
    assert all(revenue > 0 and count > 0 for revenue, count in mart.values())


def test_monthly_net_revenue_by_plan_equals_the_oracle_to_the_cent(
    seeded_year: SeededYear,
) -> None:
    mart = {
        (month, plan): Decimal(revenue)
        for month, plan, revenue in _rows(
            seeded_year,
            "select revenue_month, plan_name, net_revenue from finance.monthly_net_revenue_by_plan",
        )
    }
    assert mart == seeded_year.expected.monthly_net_revenue_by_plan


def test_current_mrr_by_plan_equals_the_oracle_to_the_cent(seeded_year: SeededYear) -> None:
    current = datetime.now(UTC).date().replace(day=1)
    mart = {
        plan: (Decimal(mrr), count)
        for plan, mrr, count in _rows(
            seeded_year,
            "select plan_name, mrr, active_subscriptions from finance.mrr_by_plan "
            f"where month = date '{current.isoformat()}'",
        )
    }
    assert mart == seeded_year.expected.current_mrr_by_plan
    assert sum(count for _, count in mart.values()) > 100
