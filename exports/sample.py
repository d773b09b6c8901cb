"""A synthetic ANALYTICS warehouse with the marts' shapes, for the export benchmark and tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

PLANS: dict[str, tuple[Decimal, Decimal]] = {
    "Basic": (Decimal("9.99"), Decimal("99.90")),
    "Bronze": (Decimal("19.99"), Decimal("199.90")),
    "Standard": (Decimal("49.99"), Decimal("499.90")),
    "Gold": (Decimal("99.99"), Decimal("999.90")),
    "Platinum": (Decimal("199.99"), Decimal("1999.90")),
}
CENT = Decimal("0.01")


def _months(last: dt.date, count: int) -> list[dt.date]:
    months = []
    year, month = last.year, last.month
    for _ in range(count):
        months.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


# The MRR movement columns of mrr_by_plan, in the mart's order.
MOVEMENTS = (
    "new_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "reactivation_mrr",
    "plan_change_mrr",
)


def _mrr_rows(months: list[dt.date], seed: int) -> pa.Table:
    """MRR by plan whose movements add up: mrr(t) = mrr(t-1) + new + expansion + reactivation
    - contraction - churned + plan_change (the dbt mart's signs: losses positive, plan change signed)."""
    rows: dict[str, list[object]] = {
        k: [] for k in ("month", "plan_name", "mrr", "active_subscriptions", *MOVEMENTS)
    }
    for p_index, (plan, (price, _)) in enumerate(PLANS.items()):
        active = 0
        for t, month in enumerate(months):
            wobble = (seed * 31 + p_index * 7 + t * 13) % 11
            new = 40 - 6 * p_index + wobble
            churned = (active * (3 + wobble % 4)) // 100
            reactivated = churned // 5
            up = (active * (1 + wobble % 3)) // 100
            down = (active * (wobble % 2)) // 100
            active = active + new + reactivated - churned
            step = (price * Decimal("0.2")).quantize(CENT)
            expansion, contraction = up * step, down * step
            # Upgrades from Basic land in Bronze: the plan-change movement nets to zero overall.
            moved = Decimal(t % 3) * Decimal("9.99")
            plan_change = -moved if plan == "Basic" else moved if plan == "Bronze" else Decimal(0)
            rows["month"].append(month)
            rows["plan_name"].append(plan)
            rows["active_subscriptions"].append(active)
            rows["new_mrr"].append(new * price)
            rows["churned_mrr"].append(churned * price)
            rows["reactivation_mrr"].append(reactivated * price)
            rows["expansion_mrr"].append(expansion)
            rows["contraction_mrr"].append(contraction)
            rows["plan_change_mrr"].append(plan_change)
            previous = rows["mrr"][-1] if t else Decimal(0)
            assert isinstance(previous, Decimal)
            rows["mrr"].append(
                previous
                + new * price
                + reactivated * price
                + expansion
                - churned * price
                - contraction
                + plan_change
            )
    money = pa.decimal128(14, 2)
    return pa.table(
        {
            "month": pa.array(rows["month"], pa.date32()),
            "plan_name": pa.array(rows["plan_name"], pa.string()),
            "mrr": pa.array(rows["mrr"], money),
            "active_subscriptions": pa.array(rows["active_subscriptions"], pa.int64()),
            "arr": pa.array([m * 12 for m in rows["mrr"]], money),  # type: ignore[operator]
            **{k: pa.array(rows[k], money) for k in MOVEMENTS},
        }
    )


def build_sample_warehouse(
    path: Path,
    *,
    payments: int = 20_000,
    months: int = 12,
    last_month: dt.date = dt.date(2026, 10, 1),
    seed: int = 7,
    empty: bool = False,
) -> Path:
    """Create (or replace) a DuckDB `ANALYTICS` file: `intermediate.fct_payments` and the
    `finance` marts computed from it by the data contract's rules."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    month_list = _months(last_month, months)
    start = dt.datetime.combine(month_list[0], dt.time(), tzinfo=dt.UTC)
    end_month = (last_month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    span = int((dt.datetime.combine(end_month, dt.time(), tzinfo=dt.UTC) - start).total_seconds())
    plans = pa.table(
        {
            "plan_name": list(PLANS),
            "plan_rank": list(range(len(PLANS))),
            "monthly_price": pa.array([p[0] for p in PLANS.values()], pa.decimal128(10, 2)),
        }
    )
    con = duckdb.connect(str(path))
    try:
        con.register("plans_src", plans)
        con.execute("set timezone = 'UTC'")
        con.execute("create schema intermediate; create schema finance")
        # hash() gives deterministic pseudo-random numbers, so a seed reproduces the data.
        con.execute(
            f"""
            create table intermediate.fct_payments as
            with base as (
                select
                    i as payment_id,
                    hash(i, {seed}) as h,
                    hash(i, {seed} + 1) as g
                from range(1, {payments} + 1) as t(i)
            ),
            shaped as (
                select
                    payment_id,
                    (1 + (h % {max(payments // 6, 1)}))::bigint as subscription_id,
                    (1 + (g % {max(payments // 8, 1)}))::bigint as user_id,
                    'ch_' || substr(md5(payment_id::varchar || '{seed}'), 1, 24) as charge_id,
                    (h // 7) % 100 as plan_roll,
                    (h // 701) % 100 as status_roll,
                    (g // 13) % 10 as discount_roll,
                    -- Ids are assigned at insert time, so they rise with paid_at, give or take.
                    ((payment_id - 1) * {span} // {max(payments, 1)} + (g // 1009) % 900)
                        % {span} as offset_seconds
                from base
            )
            select
                s.payment_id,
                s.subscription_id,
                s.user_id,
                s.charge_id,
                p.plan_name,
                case
                    when s.status_roll < 90 then 'succeeded'
                    when s.status_roll < 96 then 'failed'
                    else 'refunded'
                end as status,
                'usd' as currency,
                p.monthly_price::decimal(12, 2) as amount,
                case
                    when s.discount_roll = 0 then round(p.monthly_price * 0.1, 2)
                    else 0
                end::decimal(10, 2) as discount_amount,
                case
                    when s.status_roll < 90
                        then p.monthly_price - case
                            when s.discount_roll = 0 then round(p.monthly_price * 0.1, 2)
                            else 0
                        end
                    else 0
                end::decimal(14, 2) as net_revenue,
                timestamptz '{start.isoformat()}'
                    + to_seconds(s.offset_seconds::bigint) as paid_at,
                status_roll < 90 as is_succeeded
            from shaped as s
            join plans_src as p
                on p.plan_rank = case
                    when s.plan_roll < 35 then 0
                    when s.plan_roll < 60 then 1
                    when s.plan_roll < 80 then 2
                    when s.plan_roll < 93 then 3
                    else 4
                end
            {"where false" if empty else ""}
            order by s.payment_id
            """
        )
        con.execute(
            """
            alter table intermediate.fct_payments add column paid_date date;
            alter table intermediate.fct_payments add column paid_month date;
            alter table intermediate.fct_payments add column updated_at timestamptz;
            alter table intermediate.fct_payments add column _airbyte_extracted_at timestamptz;
            update intermediate.fct_payments set
                paid_date = paid_at::date,
                paid_month = date_trunc('month', paid_at)::date,
                updated_at = paid_at + interval 2 minute,
                _airbyte_extracted_at = date_trunc('hour', paid_at) + interval 2 hour;
            """
        )
        con.execute(
            """
            create table finance.net_revenue_by_plan as
            select
                p.plan_name,
                coalesce(sum(f.net_revenue), 0)::decimal(14, 2) as net_revenue,
                count(f.payment_id) filter (where f.status = 'succeeded') as succeeded_payments
            from plans_src as p
            left join intermediate.fct_payments as f on f.plan_name = p.plan_name
            group by p.plan_name
            order by p.plan_name
            """
        )
        con.execute(
            """
            create table finance.monthly_net_revenue_by_plan as
            select
                date_trunc('month', paid_at)::date as revenue_month,
                plan_name,
                sum(net_revenue)::decimal(14, 2) as net_revenue
            from intermediate.fct_payments
            group by all
            order by all
            """
        )
        mrr = _mrr_rows(month_list, seed)
        con.register("mrr_src", mrr)
        con.execute(
            f"create table finance.mrr_by_plan as select * from mrr_src {'where false' if empty else ''}"
        )
        con.execute(
            """
            create table finance.saas_metrics_monthly as
            select
                month,
                sum(mrr) as mrr,
                sum(arr) as arr,
                sum(active_subscriptions) as active_subscriptions,
                round(sum(mrr) / nullif(sum(active_subscriptions), 0), 2)::decimal(14, 2) as arpu
            from finance.mrr_by_plan
            group by month
            """
        )
    finally:
        con.close()
    return path
