"""The dashboard in headless Chromium over the warehouse dbt built: figures equal the contract's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests import contract_marts
from tests.dashboard.test_browser import open_page, table_rows
from tests.transform import fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def _dollars(value: Decimal) -> str:
    """How a reader expects an amount in USD, written apart from the dashboard's formatter."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def contract_from_raw(raw: Path) -> contract_marts.ContractMarts:
    """The contract oracle over the same source rows dbt read (the RAW layer, one row per key)."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{raw}' as raw (read_only)")
        con.execute("create schema app")
        for table in ("plans", "users", "subscriptions", "payments"):
            con.execute(f"create table app.{table} as select * from raw.POSTGRES_AIRBYTE.{table}")
        return contract_marts.compute(con)
    finally:
        con.close()


def test_the_dashboard_over_the_built_warehouse_shows_the_contracts_figures(
    browser: Any, start_server: Any, local_build: Any, tmp_path: Path
) -> None:
    assert local_build.outcome.success, local_build.outcome.statuses
    want = contract_from_raw(local_build.home / "warehouse" / "raw.duckdb")
    # The oracle sees the same data the fixture's own expectations describe.
    assert want.net_revenue_by_plan == fixture.expected(local_build.fixture)["net_revenue_by_plan"]

    server = start_server(local_build.home)
    page = open_page(browser, server.url, ".st-key-net-revenue-by-plan table")
    page.wait_for_selector(".st-key-kpis", timeout=30_000)
    page.screenshot(path=str(tmp_path / "dashboard-real.png"), full_page=True)

    shown = {row[0]: (row[1], row[2]) for row in table_rows(page, ".st-key-net-revenue-by-plan")}
    assert shown == {
        plan: (_dollars(revenue), f"{count:,}")
        for plan, (revenue, count) in want.net_revenue_by_plan.items()
    }

    current = fixture.month_start(local_build.fixture.now).strftime("%Y-%m")
    mrr = sum((m for m, _ in want.current_mrr_by_plan.values()), Decimal(0))
    active = sum(n for _, n in want.current_mrr_by_plan.values())
    period = sum(want.monthly_net_revenue_by_plan.values(), Decimal(0))
    kpis = " ".join(page.locator(".st-key-kpis").inner_text().split())
    assert f"Net revenue in period {_dollars(period)}" in kpis, kpis
    latest = kpis[kpis.index(f"Latest state: {current}") : kpis.index("Last full month")]
    assert f"MRR {_dollars(mrr)}" in latest, kpis
    assert f"Active subscriptions {active:,}" in latest, kpis
    assert mrr > 0 and active > 0 and period > 0
    assert "Traceback" not in page.content()
    page.close()
