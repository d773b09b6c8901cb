"""The marts of a seeded year tell one story: net revenue tracks MRR as the billing rules imply."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from core.warehouse import CONTRACT_MARTS, DuckDBWarehouse
from dashboard import metrics
from tests.dashboard.conftest import SeededHistory

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _monthly(history: SeededHistory) -> list[tuple[dt.date, Decimal, Decimal, Decimal]]:
    """(month, net revenue, MRR at the month's end, MRR churned in the month) of every month."""
    db = history.home / "warehouse" / "analytics.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            """
            with revenue as (
                select revenue_month as month, sum(net_revenue) as net_revenue
                from finance.monthly_net_revenue_by_plan group by 1
            ),
            mrr as (
                select month, sum(mrr) as mrr, sum(abs(churned_mrr)) as churned
                from finance.mrr_by_plan group by 1
            )
            select m.month, coalesce(r.net_revenue, 0), m.mrr, m.churned
            from mrr as m left join revenue as r using (month)
            order by m.month
            """
        ).fetchall()
    return [(m, Decimal(r), Decimal(v), Decimal(c)) for m, r, v, c in rows]


def test_monthly_net_revenue_is_mrr_less_discounts_failures_and_refunds(
    seeded_history: SeededHistory,
) -> None:
    rates, dirt = seeded_history.config.billing, seeded_history.config.dirt
    # What a month's payments keep of its MRR, by the configured rates: the mean discount
    # (1% to max_discount on discount_share of subscriptions, none where D12 nulls it), the
    # refunds, the periods lost to a failed attempt and its three failed retries, and the
    # amounts D5/D6 quarantine.
    mean_discount = rates.discount_share * (0.01 + rates.max_discount) / 2
    expected = (
        (1 - mean_discount * (1 - dirt.discount_null))
        * (1 - rates.refund)
        * (1 - rates.failure * rates.retry_failure_rate**3)
        * (1 - dirt.amount_unparseable - dirt.amount_negative)
    )
    floor = (1 - rates.max_discount) * (1 - rates.failure) * (1 - rates.refund)
    months = _monthly(seeded_history)
    # Full months only: the first is the company's first, the last is still in progress.
    full = months[1:-1]
    assert len(full) >= 11
    ratios = []
    for month, revenue, mrr, churned in full:
        assert mrr > 0, month
        ratio = float(revenue / mrr)
        # Subscriptions that churn during a month have paid for it when their anniversary came
        # first (half of them, on average) but are not in its closing MRR.
        paid_by_churners = float(churned / mrr) / 2
        ratios.append((month, ratio, expected * (1 + paid_by_churners)))
        assert floor <= ratio <= 1.0, (month, revenue, mrr, ratio)
    # Within 5 points: the first months hold only a couple of thousand subscriptions.
    assert all(r == pytest.approx(e, abs=0.05) for _, r, e in ratios), ratios
    # MRR grows over the year: a trend, not a level.
    assert full[-1][2] > 3 * full[0][2]


def test_churn_and_retention_have_a_point_per_full_month(seeded_history: SeededHistory) -> None:
    db = seeded_history.home / "warehouse" / "analytics.duckdb"
    with DuckDBWarehouse(db).session() as session:
        tables = session.read_required((*CONTRACT_MARTS, "cohort_retention_monthly"))
        as_of = metrics.read_as_of(session)
    marts = metrics.Marts.from_arrow(tables)
    partial = as_of.current_month
    assert partial == dt.datetime.now(dt.UTC).date().replace(day=1)
    monthly = metrics.full_months(metrics.monthly_mrr(marts), partial)
    rates = monthly.dropna(subset=["churn_rate"])
    assert len(rates) >= 11
    # A believable monthly MRR churn for the configured change rate (0.3% a day) and dunning.
    assert 0.005 < rates["churn_rate"].median() < 0.15
    assert (rates["nrr"] >= rates["grr"]).all()
    curve = metrics.retention_curve(tables["cohort_retention_monthly"].to_pandas(), partial)
    assert len(curve) >= 11
    assert curve["retention"].iloc[0] == 1.0
    assert curve["retention"].iloc[-1] < curve["retention"].iloc[1] <= 1.0
