"""The dashboard in a real headless Chromium: figures equal the marts; empty and busy warehouses explain themselves."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dashboard.metrics import money
from exports.sample import build_sample_warehouse

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


def _open(browser: Any, url: str, wait_for: str) -> Any:
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(url)
    page.wait_for_selector(wait_for, timeout=45_000)
    return page


def _table_rows(page: Any, selector: str) -> list[list[str]]:
    rows = page.locator(f"{selector} table tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_net_revenue_shown_equals_the_mart(browser: Any, start_server: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = build_sample_warehouse(home / "warehouse" / "analytics.duckdb", payments=8_000, months=10)
    con = duckdb.connect(str(db), read_only=True)
    mart = {
        plan: (revenue, count)
        for plan, revenue, count in con.execute(
            "select plan_name, net_revenue, succeeded_payments from finance.net_revenue_by_plan"
        ).fetchall()
    }
    period_total = con.execute(
        "select sum(net_revenue) from finance.monthly_net_revenue_by_plan"
    ).fetchone()
    con.close()
    assert period_total is not None

    server = start_server(home)
    page = _open(browser, server.url, ".st-key-net-revenue-by-plan table")
    # Charts render after the tables; wait for them before the screenshot.
    page.wait_for_selector(
        "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
        timeout=30_000,
    )
    page.wait_for_timeout(1_500)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    shown = _table_rows(page, ".st-key-net-revenue-by-plan")
    assert {row[0]: (row[1], row[2]) for row in shown} == {
        plan: (money(revenue), f"{count:,}") for plan, (revenue, count) in mart.items()
    }
    # Largest first, so the order a reader sees is the ranking.
    revenues = [Decimal(r[1].replace("$", "").replace(",", "")) for r in shown]
    assert revenues == sorted(revenues, reverse=True)

    kpis = " ".join(page.locator(".st-key-kpis").inner_text().split())
    assert f"Net revenue in period {money(period_total[0])}" in kpis
    for title in (
        "Monthly net revenue by plan",
        "MRR by plan",
        "MRR movements",
        "Active subscriptions",
        "MRR churn rate",
        "ARPU",
    ):
        assert page.get_by_text(title, exact=False).count() > 0, title

    # The plan filter: removing a plan removes it from the table and from the period total.
    page.get_by_role("button", name="Remove Basic").click()
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => document.querySelectorAll('.st-key-net-revenue-by-plan table tbody tr').length === 4",
        timeout=20_000,
    )
    remaining = {row[0] for row in _table_rows(page, ".st-key-net-revenue-by-plan")}
    assert remaining == set(mart) - {"Basic"}
    page.close()


def test_empty_missing_and_busy_warehouses_explain_themselves(
    browser: Any, start_server: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    alert = "[data-testid='stAlert']"

    page = _open(browser, server.url, alert)
    text = page.locator(alert).inner_text()
    assert "No data yet" in text and "does not exist" in text
    assert "Traceback" not in page.content()
    page.close()

    db = build_sample_warehouse(home / "warehouse" / "analytics.duckdb", empty=True)
    page = _open(browser, server.url, alert)
    assert "No data yet: the marts exist but hold no rows" in page.locator(alert).inner_text()
    page.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
    page.close()

    # dbt holds the write lock while it builds: the page says so instead of failing.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        page = _open(browser, server.url, alert)
        assert "being refreshed right now" in page.locator(alert).inner_text()
        page.close()
    finally:
        holder.kill()
        holder.wait()
