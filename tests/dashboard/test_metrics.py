"""The dashboard's figures: money formatting, filters, MRR movements, churn and ARPU."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from core.warehouse import CONTRACT_MARTS, DuckDBWarehouse
from dashboard import metrics
from exports.sample import build_sample_warehouse


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234567.891"), "$1,234,567.89"),
        (Decimal("0.005"), "$0.01"),  # half away from zero, as the contract rounds
        (Decimal("-0.005"), "-$0.01"),
        (Decimal("-1200"), "-$1,200.00"),
        (0, "$0.00"),
        (12.3, "$12.30"),
        (None, "—"),
    ],
)
def test_money(value: object, shown: str) -> None:
    assert metrics.money(value) == shown


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> metrics.Marts:
    db = build_sample_warehouse(
        tmp_path_factory.mktemp("wh") / "analytics.duckdb", payments=3_000, months=6
    )
    with DuckDBWarehouse(db).session() as session:
        return metrics.Marts.from_arrow(session.read_required(CONTRACT_MARTS))


def test_filters_cut_plans_and_months(marts: metrics.Marts) -> None:
    months = marts.months
    assert len(months) == 6
    chosen = marts.filtered(["Gold", "Basic"], months[1], months[3])
    assert set(chosen.net_revenue["plan_name"]) == {"Gold", "Basic"}
    assert set(chosen.monthly_net_revenue["revenue_month"]) == set(months[1:4])
    assert set(chosen.mrr["month"]) == set(months[1:4])
    assert set(chosen.mrr["plan_name"]) == {"Gold", "Basic"}


def test_net_revenue_table_is_the_mart_formatted(marts: metrics.Marts, tmp_path: Path) -> None:
    table = metrics.net_revenue_table(marts)
    raw = marts.net_revenue.set_index("plan_name")
    for _, row in table.iterrows():
        assert row["Net revenue"] == metrics.money(raw.loc[row["Plan"], "net_revenue"])
    assert list(table["Plan"]) == list(raw.sort_values("net_revenue", ascending=False).index)


def test_movements_close_the_mrr_bridge_and_losses_are_negative(marts: metrics.Marts) -> None:
    monthly = metrics.monthly_mrr(marts)
    moves = [
        "new_mrr",
        "expansion_mrr",
        "reactivation_mrr",
        "contraction_mrr",
        "churned_mrr",
        "plan_change_mrr",
    ]
    assert (monthly["churned_mrr"] <= 0).all() and (monthly["contraction_mrr"] <= 0).all()
    for prev, cur in zip(
        monthly.iloc[:-1].itertuples(), monthly.iloc[1:].itertuples(), strict=True
    ):
        assert cur.mrr == prev.mrr + sum(getattr(cur, m) for m in moves)
        assert cur.churn_rate == pytest.approx(float(-cur.churned_mrr / prev.mrr))
        assert cur.arpu == (cur.mrr / cur.active_subscriptions).quantize(Decimal("0.01"))
    long = metrics.movements_long(monthly)
    assert set(long["movement"]) == set(metrics.MOVEMENT_LABELS.values())


def test_a_mart_that_stores_losses_negative_shows_the_same(marts: metrics.Marts) -> None:
    flipped = marts.mrr.copy()
    flipped["churned_mrr"] = [-v for v in flipped["churned_mrr"]]
    same = metrics.monthly_mrr(metrics.Marts(marts.net_revenue, marts.monthly_net_revenue, flipped))
    assert same["churned_mrr"].tolist() == metrics.monthly_mrr(marts)["churned_mrr"].tolist()


def test_sample_warehouse_follows_the_contract_rules(tmp_path: Path) -> None:
    db = build_sample_warehouse(tmp_path / "a.duckdb", payments=2_000, months=3)
    con = duckdb.connect(str(db), read_only=True)
    by_rule = con.execute(
        "select sum(case when status = 'succeeded' then amount - coalesce(discount_amount, 0) else 0 end) "
        "from intermediate.fct_payments"
    ).fetchone()
    mart = con.execute("select sum(net_revenue) from finance.net_revenue_by_plan").fetchone()
    monthly = con.execute(
        "select sum(net_revenue) from finance.monthly_net_revenue_by_plan"
    ).fetchone()
    con.close()
    assert by_rule == mart == monthly
    with DuckDBWarehouse(db).session() as session:
        months = metrics.Marts.from_arrow(session.read_required(CONTRACT_MARTS)).months
    assert months == [dt.date(2026, 8, 1), dt.date(2026, 9, 1), dt.date(2026, 10, 1)]


def test_without_a_data_as_of_mart_the_times_are_unknown_and_say_why(tmp_path: Path) -> None:
    db = build_sample_warehouse(tmp_path / "a.duckdb", payments=200, months=2)
    with DuckDBWarehouse(db).session() as session:
        missing = metrics.read_as_of(session)
    assert missing == metrics.AsOf(None, None, found=False)
    assert missing.current_month is None
    line = metrics.as_of_line(missing)
    assert line.startswith("Data as of unknown (last successful load) · marts built unknown")
    assert "no DATA_AS_OF mart" in line and "next pipeline run builds it" in line

    con = duckdb.connect(str(db))
    con.execute(
        "create table finance.data_as_of as select "
        "timestamp '2026-10-14 06:05:59' as last_loaded_at, "
        "timestamp '2026-10-14 07:30:00' as marts_built_at"
    )
    con.close()
    with DuckDBWarehouse(db).session() as session:
        found = metrics.read_as_of(session)
    assert found == metrics.AsOf(
        dt.datetime(2026, 10, 14, 6, 5, 59, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 14, 7, 30, tzinfo=dt.UTC),
    )
    assert found.current_month == dt.date(2026, 10, 1)
    assert metrics.as_of_line(found) == (
        "Data as of 2026-10-14 06:05 UTC (last successful load) · marts built "
        "2026-10-14 07:30 UTC (last successful run)"
    )


def test_revenue_against_mrr_sums_monthly_subscriptions_of_the_chosen_plans() -> None:
    import pandas as pd

    def row(month: int, plan: str, period: str, mrr: str, net: str) -> dict[str, object]:
        return {
            "month": dt.date(2026, month, 1),
            "plan_name": plan,
            "billing_period": period,
            "mrr": Decimal(mrr),
            "active_subscriptions": 1,
            "net_revenue": Decimal(net),
            "succeeded_amount": Decimal(net) + 1,
            "discount_amount": Decimal(1),
            "refunded_amount": Decimal("2.50"),
            "failed_amount": Decimal(0),
        }

    rows = pd.DataFrame(
        [
            row(8, "Gold", "monthly", "100.00", "90.10"),
            row(8, "Basic", "monthly", "10.00", "9.00"),
            row(8, "Gold", "annual", "50.00", "600.00"),
            row(9, "Gold", "monthly", "120.00", "30.00"),
            row(9, "Basic", "monthly", "10.00", "0.00"),
        ]
    )
    marts = metrics.Marts(
        pd.DataFrame(columns=["plan_name"]),
        pd.DataFrame(columns=["revenue_month", "plan_name"]),
        pd.DataFrame(columns=["month", "plan_name"]),
        rows,
    )
    shown = metrics.revenue_against_mrr(marts.by_billing_period, dt.date(2026, 9, 1))
    assert shown["month"].tolist() == [dt.date(2026, 8, 1), dt.date(2026, 9, 1)]
    assert shown["mrr"].tolist() == [Decimal("110.00"), Decimal("130.00")]
    assert shown["net_revenue"].tolist() == [Decimal("99.10"), Decimal("30.00")]
    assert shown["refunded_amount"].tolist() == [Decimal("5.00"), Decimal("5.00")]
    # The month in progress has no ratio: it has paid part of its MRR so far.
    assert shown["ratio"].iloc[0] == pytest.approx(99.1 / 110) and pd.isna(shown["ratio"].iloc[1])

    gold = marts.filtered(["Gold"], dt.date(2026, 8, 1), dt.date(2026, 8, 1))
    assert gold.by_billing_period is not None
    only = metrics.revenue_against_mrr(gold.by_billing_period, None)
    assert only[["mrr", "net_revenue"]].values.tolist() == [[Decimal("100.00"), Decimal("90.10")]]
