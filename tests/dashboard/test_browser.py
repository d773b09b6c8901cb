"""The dashboard in a real headless Chromium: figures equal the marts; empty and busy warehouses explain themselves."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dashboard.metrics import money, percent
from exports.sample import build_sample_warehouse
from tests.dashboard.conftest import SeededHistory
from tests.warehouse_lock import write_lock_held

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


def open_page(browser: Any, url: str, wait_for: str) -> Any:
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(url)
    page.wait_for_selector(wait_for, timeout=45_000)
    return page


def table_rows(page: Any, selector: str) -> list[list[str]]:
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
    page = open_page(browser, server.url, ".st-key-net-revenue-by-plan table")
    # Charts render after the tables; wait for them before the screenshot.
    page.wait_for_selector(
        "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
        timeout=30_000,
    )
    page.wait_for_timeout(1_500)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    shown = table_rows(page, ".st-key-net-revenue-by-plan")
    assert {row[0]: (row[1], row[2]) for row in shown} == {
        plan: (money(revenue), f"{count:,}") for plan, (revenue, count) in mart.items()
    }
    # Largest first, so the order a reader sees is the ranking.
    revenues = [Decimal(r[1].replace("$", "").replace(",", "")) for r in shown]
    assert revenues == sorted(revenues, reverse=True)

    kpis = " ".join(page.locator(".st-key-kpis").inner_text().split())
    assert f"Net revenue in period {money(period_total[0])}" in kpis
    # A warehouse built before the DATA_AS_OF and billing-period marts says what it lacks.
    as_of = " ".join(page.locator(".st-key-as-of").inner_text().split())
    assert as_of.startswith(
        "Data as of unknown (last successful load) · marts built unknown (last successful run). "
        "The warehouse has no DATA_AS_OF mart"
    ), as_of
    comparison = page.locator(".st-key-revenue-vs-mrr").inner_text()
    assert "revenue_and_mrr_by_billing_period is not built in this warehouse" in comparison
    for title in (
        "Monthly net revenue by plan",
        "MRR by plan",
        "MRR movements",
        "Active subscriptions",
        "MRR churn rate",
        "ARPU",
        "Customer retention",
    ):
        assert page.get_by_text(title, exact=False).count() > 0, title

    # The plan filter: removing a plan removes it from the table and from the period total.
    page.get_by_role("button", name="Remove Basic").click()
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => document.querySelectorAll('.st-key-net-revenue-by-plan table tbody tr').length === 4",
        timeout=20_000,
    )
    remaining = {row[0] for row in table_rows(page, ".st-key-net-revenue-by-plan")}
    assert remaining == set(mart) - {"Basic"}
    page.close()


def test_empty_missing_and_busy_warehouses_explain_themselves(
    browser: Any, start_server: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    alert = "[data-testid='stAlert']"

    page = open_page(browser, server.url, alert)
    text = page.locator(alert).inner_text()
    assert "No data yet" in text and "does not exist" in text
    assert "Traceback" not in page.content()
    page.close()

    db = build_sample_warehouse(home / "warehouse" / "analytics.duckdb", empty=True)
    page = open_page(browser, server.url, alert)
    assert "No data yet: the marts exist but hold no rows" in page.locator(alert).inner_text()
    page.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
    page.close()

    # dbt holds the write lock while it builds: the page says so instead of failing.
    with write_lock_held(db, 60):
        page = open_page(browser, server.url, alert)
        assert "being refreshed right now" in page.locator(alert).inner_text()
        page.close()


def _overflowing(page: Any, selector: str) -> list[str]:
    """Texts of the elements under `selector` whose content is wider than their box."""
    return page.eval_on_selector_all(
        selector,
        """els => els
            .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
            .map(e => e.innerText)""",
    )


@pytest.mark.timeout(900)  # the seeded year is generated, synced and built once per session
def test_a_seeded_year_shows_its_as_of_line_partial_month_and_the_marts(
    browser: Any, start_server: Any, seeded_history: SeededHistory, tmp_path: Path
) -> None:
    db = seeded_history.home / "warehouse" / "analytics.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        as_of_row = con.execute(
            "select last_loaded_at, marts_built_at, current_month from finance.data_as_of"
        ).fetchall()
        synced = con.execute(
            "select max(_airbyte_extracted_at) at time zone 'UTC' from intermediate.fct_payments"
        ).fetchone()
        by_month = con.execute(
            """
            select m.month, sum(m.mrr), sum(m.active_subscriptions), sum(m.churned_mrr),
                   sum(m.contraction_mrr), sum(m.expansion_mrr),
                   (select sum(net_revenue) from finance.monthly_net_revenue_by_plan r
                    where r.revenue_month = m.month)
            from finance.mrr_by_plan m group by m.month order by m.month
            """
        ).fetchall()
        period_total = con.execute(
            "select sum(net_revenue) from finance.monthly_net_revenue_by_plan"
        ).fetchone()
        against = con.execute(
            """
            select month, sum(mrr), sum(net_revenue), sum(discount_amount),
                   sum(refunded_amount), sum(failed_amount)
            from finance.revenue_and_mrr_by_billing_period
            where billing_period = 'monthly' group by month order by month
            """
        ).fetchall()
    assert synced is not None and period_total is not None
    # The mart's row: the last load is the newest sync of the payments the marts include.
    ((last_load, built, in_progress),) = as_of_row
    assert last_load == synced[0] and built >= last_load
    current, closed, before = by_month[-1], by_month[-2], by_month[-3]
    assert current[0] == in_progress == last_load.date().replace(day=1)

    server = start_server(seeded_history.home)
    page = open_page(browser, server.url, ".st-key-kpis [data-testid='stMetricValue']")
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='stVegaLiteChart']\").length >= 8",
        timeout=45_000,
    )
    page.wait_for_timeout(2_000)
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)

    as_of = " ".join(page.locator(".st-key-as-of").inner_text().split())
    assert (
        f"Data as of {last_load:%Y-%m-%d %H:%M} UTC (last successful load) · "
        f"marts built {built:%Y-%m-%d %H:%M} UTC (last successful run)"
    ) in as_of
    assert "unknown" not in as_of
    assert f"{current[0]:%Y-%m} is in progress and marked partial" in as_of

    def month(m: Any) -> str:
        return f"{m:%Y-%m}"

    cards = page.locator(".st-key-kpis [data-testid='stMetric']")
    assert cards.count() == 8
    shown = {
        " ".join(cards.nth(i).locator("[data-testid='stMetricLabel']").inner_text().split()): (
            cards.nth(i).locator("[data-testid='stMetricValue']").inner_text().strip()
        )
        for i in range(cards.count())
    }
    prev_mrr = Decimal(before[1])
    kept = prev_mrr - abs(Decimal(closed[3])) - abs(Decimal(closed[4]))
    with duckdb.connect(str(db), read_only=True) as con:
        arr = con.execute(
            "select sum(arr) from finance.mrr_by_plan where month = ?", [current[0]]
        ).fetchone()
    assert arr is not None
    expected = {
        "MRR": money(current[1]),
        "ARR": money(arr[0]),
        "Active subscriptions": f"{int(current[2]):,}",
        "ARPU": money(Decimal(current[1]) / Decimal(int(current[2]))),
        "Net revenue": money(closed[6]),
        "MRR churn rate": percent(float(abs(Decimal(closed[3])) / prev_mrr)),
        "NRR": percent(float((kept + Decimal(closed[5])) / prev_mrr)),
        "Net revenue in period": money(period_total[0]),
    }
    assert shown == expected
    kpi_text = " ".join(page.locator(".st-key-kpis").inner_text().split())
    assert f"Latest state: {month(current[0])} (partial)" in kpi_text
    assert f"Last full month: {month(closed[0])}" in kpi_text

    # Two full rows of four cards: no card alone on a row.
    tops = sorted(round(cards.nth(i).bounding_box()["y"]) for i in range(8))
    assert tops[:4] == [tops[0]] * 4 and tops[4:] == [tops[4]] * 4 and tops[4] > tops[0]
    # Every KPI explains itself: a help icon per card.
    assert page.locator(".st-key-kpis [data-testid='stTooltipIcon']").count() == 8

    # Monthly subscriptions' net revenue beside their MRR: the chart, and its figures in the
    # table under it, equal the mart; only full months have a ratio.
    comparison = page.locator(".st-key-revenue-vs-mrr")
    assert comparison.locator("[data-testid='stVegaLiteChart']").count() == 1
    comparison.locator("[data-testid='stExpander'] summary").click()
    page.wait_for_selector(".st-key-revenue-vs-mrr table tbody tr", timeout=20_000)
    rows = table_rows(page, ".st-key-revenue-vs-mrr")
    assert len(rows) == len(against) >= 13
    assert rows == [
        [
            f"{month(m)} (partial)" if m == current[0] else month(m),
            *(money(v) for v in (mrr, net, discounts, refunded, failed)),
            "—" if m == current[0] else percent(float(Decimal(net) / Decimal(mrr))),
        ]
        for m, mrr, net, discounts, refunded, failed in against
    ]
    # A full month's net revenue is its MRR less discounts, failures and refunds: below, close.
    full = [(Decimal(mrr), Decimal(net)) for m, mrr, net, *_ in against[1:-1]]
    assert all(Decimal("0.8") * mrr < net <= mrr for mrr, net in full), full

    # Titles and labels are never cut off.
    titles = page.locator("[class*='st-key-title-']")
    assert titles.count() >= 8
    assert _overflowing(page, "[class*='st-key-title-'] p") == []
    assert _overflowing(page, "[data-testid='stMetricLabel'] p") == []
    assert _overflowing(page, "h1, h2, h3") == []
    page.close()
