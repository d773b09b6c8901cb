"""Checks of the MRR movements and the cohorts that do not reuse the models' SQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tests.contract_marts import canonical, subscription_status
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
