"""Checks of the MRR movements and the cohorts that do not reuse the models' SQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tests.contract_marts import canonical, money, parse_amount, subscription_status
from tests.transform import fixture

MOVEMENTS = (
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "plan_change_mrr",
    "contraction_mrr",
    "churned_mrr",
)
# Each of the bridge's eight terms is rounded to the cent on its own: half a cent each at most.
BRIDGE_TOLERANCE = Decimal("0.005") * 8


def _rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def bridge_breaks(warehouse: Path) -> tuple[list[str], dict[str, int]]:
    """Rows of mrr_by_plan where MRR is not last month's MRR plus the month's movements.

    Also returns, per movement column, how many rows have it non-zero (a bridge of zeros
    proves nothing).
    """
    rows = _rows(
        warehouse,
        f"select plan_name, month, mrr, {', '.join(MOVEMENTS)} from finance.mrr_by_plan "
        "order by plan_name, month",
    )
    by_plan: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_plan[row[0]].append(row)
    breaks: list[str] = []
    nonzero = dict.fromkeys(MOVEMENTS, 0)
    for plan, plan_rows in by_plan.items():
        previous = Decimal(0)
        last_month: date | None = None
        for (
            _,
            month,
            mrr,
            new,
            expansion,
            reactivation,
            plan_change,
            contraction,
            churned,
        ) in plan_rows:
            if last_month is not None:
                # Every plan has a row for every month: a gap would hide a month's movements.
                assert fixture.month_start(last_month, 1) == month, (plan, last_month, month)
            bridged = (
                previous + new + expansion + reactivation + plan_change - contraction - churned
            )
            if abs(mrr - bridged) > BRIDGE_TOLERANCE:
                breaks.append(f"{plan} {month}: mrr {mrr} but the bridge gives {bridged}")
            for name, value in zip(
                MOVEMENTS, (new, expansion, reactivation, plan_change, contraction, churned),
                strict=True,
            ):  # fmt: skip
                nonzero[name] += value != 0
            previous, last_month = mrr, month
    return breaks, nonzero


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def counted_months(fx: fixture.Fixture) -> dict[int, set[date]]:
    """The months each user has a subscription counted towards MRR, from the source rows.

    The rules of transform/README.md ("MRR, current month" and "MRR, past months"), for a
    fixture whose raw layer holds one version of each subscription: the current month counts
    subscriptions that are active now and whose user is not soft-deleted; a past month counts
    those active at the month's end, where a subscription is active from its version's
    `updated_at` if that version is active, and before it from `started_at` until
    `cancelled_at` (if earlier); a soft-deleted user's subscriptions stop at `deleted_at`.
    """
    plans = {canonical(p["name"]) for p in fx.rows["plans"]}
    users = {u["id"]: u for u in fx.rows["users"]}
    ids = [s["id"] for s in fx.rows["subscriptions"]]
    assert len(ids) == len(set(ids)), "one version per subscription expected"
    current = fixture.month_start(fx.now)
    first = min(
        fixture.month_start(s["started_at"].astimezone(UTC)) for s in fx.rows["subscriptions"]
    )
    months = [fixture.month_start(first, k) for k in range(_months_between(first, current) + 1)]

    counted: dict[int, set[date]] = defaultdict(set)
    for s in fx.rows["subscriptions"]:
        if canonical(s["plan"]) not in plans:
            continue
        user = users.get(s["user_id"])
        deleted = _utc(user["deleted_at"]) if user else None
        is_active = subscription_status(s["status"]) == "active"
        version_from = _utc(s["updated_at"])
        started, cancelled = _utc(s["started_at"]), _utc(s["cancelled_at"])
        assert version_from is not None and started is not None
        backfill_until = cancelled if cancelled and cancelled < version_from else version_from
        for month in months:
            if month == current:
                counts = is_active and deleted is None
            else:
                end = datetime(*fixture.month_start(month, 1).timetuple()[:3], tzinfo=UTC)
                in_version = is_active and version_from < end
                in_backfill = started < version_from and started < end <= backfill_until
                counts = (in_version or in_backfill) and (deleted is None or deleted >= end)
            if counts:
                counted[s["user_id"]].add(month)
    return counted


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def expected_cohorts(fx: fixture.Fixture) -> dict[tuple[date, date], tuple[int, int, int]]:
    """(cohort month, activity month) -> (months since cohort, cohort size, retained)."""
    counted = counted_months(fx)
    cohort_of = {user: min(months) for user, months in counted.items() if months}
    sizes: dict[date, int] = defaultdict(int)
    for cohort in cohort_of.values():
        sizes[cohort] += 1
    retained: dict[tuple[date, date], int] = defaultdict(int)
    for user, months in counted.items():
        for month in months:
            retained[(cohort_of[user], month)] += 1
    return {
        (cohort, month): (_months_between(cohort, month), sizes[cohort], n)
        for (cohort, month), n in retained.items()
    }


def built_cohorts(warehouse: Path) -> dict[tuple[date, date], tuple[int, int, int, Decimal]]:
    return {
        (cohort, month): (since, size, kept, rate)
        for cohort, month, since, size, kept, rate in _rows(
            warehouse,
            "select cohort_month, activity_month, months_since_cohort, cohort_customers, "
            "retained_customers, retention_rate from finance.cohort_retention_monthly",
        )
    }


def _dicts(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def expected_payments_by_month(fx: fixture.Fixture) -> dict[date, tuple[Decimal, Decimal]]:
    """Per UTC month of `paid_at`: (gross amount, discounts) of the accepted succeeded payments,
    by the contract's cleaning rules (D4-D8) written apart from the models."""
    subscription_ids = {s["id"] for s in fx.rows["subscriptions"]}
    first_by_charge: dict[str, int] = {}
    for p in sorted(fx.rows["payments"], key=lambda r: r["id"]):
        first_by_charge.setdefault(p["charge_id"], p["id"])
    totals: dict[date, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for p in fx.rows["payments"]:
        if fixture.rejection(p, first_by_charge, subscription_ids):
            continue
        if canonical(p["status"]) != "succeeded":
            continue
        amount = parse_amount(p["amount"])
        assert amount is not None
        month = fixture.month_start(p["paid_at"].astimezone(UTC))
        totals[month][0] += amount
        totals[month][1] += p["discount_amount"] or Decimal(0)
    return {month: (gross, discount) for month, (gross, discount) in totals.items()}


def _rate(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator == 0 else (numerator / denominator).quantize(Decimal("0.0001"))


def saas_metric_breaks(fx: fixture.Fixture, warehouse: Path) -> tuple[list[str], dict[str, int]]:
    """Each row of saas_metrics_monthly against its definition (transform/README.md):
    customers from the source's counted months, net revenue and the discount rate from the
    source's payments, MRR and its movements from mrr_by_plan, and every rate recomputed.
    Returns the breaks and, per figure, how many months it was non-trivially checked in."""
    metrics = _dicts(warehouse, "select * from finance.saas_metrics_monthly order by month")
    by_plan = _dicts(warehouse, "select * from finance.mrr_by_plan")
    customers: dict[date, int] = defaultdict(int)
    for months in counted_months(fx).values():
        for month in months:
            customers[month] += 1
    revenue: dict[date, Decimal] = defaultdict(Decimal)
    for (month, _plan), net in fixture.expected(fx)["monthly_net_revenue_by_plan"].items():
        revenue[month] += net
    paid = expected_payments_by_month(fx)
    cent, rate_step = Decimal("0.01"), Decimal("0.0001")
    breaks: list[str] = []
    checked: dict[str, int] = defaultdict(int)

    def check(month: date, name: str, got: Any, want: Any, tolerance: Decimal) -> None:
        if want is None or got is None:
            if want is not got:
                breaks.append(f"{month} {name}: {got} != {want}")
            return
        if abs(Decimal(got) - Decimal(want)) > tolerance:
            breaks.append(f"{month} {name}: {got} != {want}")
        elif want != 0:
            checked[name] += 1

    previous: dict[str, Any] | None = None
    for row in metrics:
        month = row["month"]
        plans = [r for r in by_plan if r["month"] == month]
        sums = {k: sum((r[k] for r in plans), Decimal(0)) for k in ("arr", *MOVEMENTS)}
        check(month, "arr", row["arr"], sums["arr"], cent)
        check(month, "mrr", row["mrr"], sums["arr"] / 12, cent)
        check(
            month,
            "active_subscriptions",
            row["active_subscriptions"],
            sum(r["active_subscriptions"] for r in plans),
            Decimal(0),
        )
        for movement in ("new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr"):
            check(month, movement, row[movement], sums[movement], cent)
        check(
            month, "active_customers", row["active_customers"], customers.get(month, 0), Decimal(0)
        )
        check(month, "net_revenue", row["net_revenue"], revenue.get(month, Decimal(0)), cent * 5)
        gross, discount = paid.get(month, (Decimal(0), Decimal(0)))
        check(month, "discount_rate", row["discount_rate"], _rate(discount, gross), rate_step)
        want_arpu = (
            None if row["active_customers"] == 0 else money(row["mrr"] / row["active_customers"])
        )
        check(month, "arpu", row["arpu"], want_arpu, cent)
        last_mrr = previous["mrr"] if previous else Decimal(0)
        last_active = previous["active_subscriptions"] if previous else 0
        lost = row["churned_mrr"] + row["contraction_mrr"]
        check(
            month,
            "logo_churn_rate",
            row["logo_churn_rate"],
            _rate(Decimal(row["churned_subscriptions"]), Decimal(last_active)),
            rate_step,
        )
        check(
            month, "revenue_churn_rate", row["revenue_churn_rate"], _rate(lost, last_mrr), rate_step
        )
        check(month, "grr", row["grr"], _rate(last_mrr - lost, last_mrr), rate_step)
        check(
            month,
            "nrr",
            row["nrr"],
            _rate(last_mrr - lost + row["expansion_mrr"], last_mrr),
            rate_step,
        )
        previous = row
    return breaks, dict(checked)
