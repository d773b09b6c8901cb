"""Billing (contract section 1a) on a seeded history: one payment per period, list prices, dunning."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from source_generator import GeneratorConfig
from source_generator.billing import LEDGER_SCHEMA, anniversary, period_at
from source_generator.config import BillingRates, ChangeRates, DirtRates
from source_generator.history import history_clocks, history_start, seed_history
from source_generator.migrate import migrate
from source_generator.simulation import generate_cycle
from tests.contract_marts import parse_amount

pytestmark = pytest.mark.postgres

END = datetime(2026, 3, 1, tzinfo=UTC)
CYCLE = timedelta(hours=2)
PAID = ("succeeded", "refunded")  # a refunded payment was a succeeded one


def test_anniversaries_fall_on_the_last_day_of_shorter_months() -> None:
    start = datetime(2025, 1, 31, 15, 30, tzinfo=UTC)
    assert [anniversary(start, k, annual=False).date().isoformat() for k in range(5)] == [
        "2025-01-31",
        "2025-02-28",
        "2025-03-31",
        "2025-04-30",
        "2025-05-31",
    ]
    assert anniversary(start, 1, annual=False).time() == start.time()
    leap = datetime(2024, 2, 29, tzinfo=UTC)
    assert anniversary(leap, 1, annual=True) == datetime(2025, 2, 28, tzinfo=UTC)
    assert anniversary(leap, 4, annual=True) == datetime(2028, 2, 29, tzinfo=UTC)
    assert period_at(start, datetime(2025, 2, 28, 15, 29, tzinfo=UTC), False) == 0
    assert period_at(start, datetime(2025, 2, 28, 15, 30, tzinfo=UTC), False) == 1
    assert period_at(leap, datetime(2026, 3, 1, tzinfo=UTC), True) == 2


def test_history_starts_months_back_on_the_first_of_a_month() -> None:
    assert history_start(datetime(2026, 12, 4, tzinfo=UTC)) == datetime(2025, 12, 1, tzinfo=UTC)
    clocks = history_clocks(datetime(2026, 1, 1, tzinfo=UTC), END, timedelta(days=7))
    assert clocks[0] == datetime(2026, 1, 8, tzinfo=UTC) and clocks[-1] == END
    assert all(b - a <= timedelta(days=7) for a, b in itertools.pairwise(clocks))


def _seed(dsn: str, config: GeneratorConfig, months: int) -> None:
    with psycopg.connect(dsn) as conn:
        result = seed_history(conn, config, END, CYCLE, months=months)
        assert not result.skipped and result.cycles >= 4 * months
        again = seed_history(conn, config, END, CYCLE, months=months)
        assert again.skipped  # a source with subscriptions is left as it is


@pytest.fixture(scope="module")
def history(source_db_factory: Callable[[], str]) -> str:
    """Fourteen months of history at a small pace: annual subscriptions renew once."""
    dsn = source_db_factory()
    _seed(dsn, GeneratorConfig(rows_per_cycle=12, seed=17), months=14)
    return dsn


def _payments(dsn: str) -> list[dict[str, Any]]:
    """Payments joined to their subscription, without D7 duplicates and D8 orphans."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            select p.id, p.subscription_id, p.amount, p.discount_amount,
                   lower(trim(p.status)), p.paid_at, p.created_at,
                   s.started_at, lower(trim(s.billing_period)) in ('annual', 'yearly'),
                   lower(trim(s.plan)), s.updated_at,
                   lower(trim(s.status))
            from app.payments p
            join app.subscriptions s on s.id = p.subscription_id
            where not exists (
                select 1 from app.payments d where d.charge_id = p.charge_id and d.id < p.id
            )
            order by p.subscription_id, p.paid_at, p.id
            """
        ).fetchall()
    keys = (
        "id",
        "sub",
        "amount",
        "discount",
        "status",
        "paid_at",
        "created_at",
        "started_at",
        "annual",
        "plan",
        "sub_updated_at",
        "sub_status",
    )
    payments = [dict(zip(keys, row, strict=True)) for row in rows]
    for p in payments:
        # The instant the payment's amount was set: its period's anniversary for the anniversary
        # attempt and its dunning retries (they charge the same invoice), else the payment's own.
        invoiced_at = _anniversary_of(p) if _scheduled(p) else p["paid_at"]
        p["unchanged_since"] = p["sub_updated_at"] <= invoiced_at
    return payments


def _prices(dsn: str) -> dict[str, tuple[Decimal, Decimal]]:
    with psycopg.connect(dsn) as conn:
        return {
            name: (monthly, annual)
            for name, monthly, annual in conn.execute(
                "select lower(name), monthly_price, annual_price from app.plans"
            )
        }


def test_at_most_one_succeeded_payment_per_billing_period(history: str) -> None:
    periods: dict[tuple[int, int], int] = defaultdict(int)
    payments = _payments(history)
    assert len(payments) > 20_000
    for p in payments:
        if p["status"] in PAID:
            periods[(p["sub"], period_at(p["started_at"], p["paid_at"], p["annual"]))] += 1
    assert periods and max(periods.values()) == 1
    # Every subscription pays its first period at started_at (unless that attempt failed).
    first = {p["sub"]: p for p in reversed(payments)}
    assert all(p["paid_at"] == p["started_at"] for p in first.values())


def test_each_amount_is_the_price_of_the_plan_for_the_billing_period(history: str) -> None:
    prices = _prices(history)
    monthly = {m for m, _ in prices.values()}
    annual = {a for _, a in prices.values()}
    discounts: dict[int, set[Decimal]] = defaultdict(set)
    exact = 0
    for p in _payments(history):
        amount = parse_amount(p["amount"])
        if amount is None or amount < 0:
            continue  # D5 and D6: quarantined downstream
        assert amount in (annual if p["annual"] else monthly), p
        if p["unchanged_since"]:
            # No change to the subscription since: its current plan's price, to the cent.
            assert amount == prices[p["plan"]][1 if p["annual"] else 0], p
            exact += 1
        if p["discount"] is not None:
            assert 0 <= p["discount"] <= (amount * Decimal("0.30")).quantize(Decimal("0.01"))
            discounts[p["sub"]].add(p["discount"] / amount if amount else Decimal(0))
        assert p["created_at"] == p["paid_at"]
    assert exact > 1000
    # One discount rate per subscription (to the rounding of a cent).
    assert all(max(r) - min(r) < Decimal("0.001") for r in discounts.values())
    share = sum(1 for r in discounts.values() if max(r) > 0) / len(discounts)
    assert 0.15 < share < 0.35  # discount_share 0.25


def _anniversary_of(p: dict[str, Any]) -> datetime:
    """The anniversary of the billing period that the payment's instant falls in."""
    k = period_at(p["started_at"], p["paid_at"], p["annual"])
    return anniversary(p["started_at"], k, p["annual"])


def _scheduled(p: dict[str, Any]) -> bool:
    """Paid on an anniversary or one of its dunning retries (not when coming back from idle)."""
    return p["paid_at"] - _anniversary_of(p) in {timedelta(days=d) for d in (0, 1, 3, 7)}


def _retry(p: dict[str, Any]) -> bool:
    """A dunning retry: 1, 3 or 7 days after its period's anniversary."""
    return p["paid_at"] - _anniversary_of(p) in {timedelta(days=d) for d in (1, 3, 7)}


def test_annual_subscriptions_pay_once_a_year_and_monthly_once_a_month(history: str) -> None:
    paid: dict[int, list[datetime]] = defaultdict(list)
    annual: dict[int, bool] = {}
    comebacks = 0
    for p in _payments(history):
        if p["status"] not in PAID:
            continue
        annual[p["sub"]] = p["annual"]
        if _scheduled(p):
            paid[p["sub"]].append(p["paid_at"])
        else:
            comebacks += 1  # a reactivation pays for the period it comes back in
    renewed = 0
    for sub, times in paid.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # The latest a period's payment comes is its last dunning retry, 7 days late.
        least = timedelta(days=365 - 7) if annual[sub] else timedelta(days=28 - 7)
        assert all(g >= least for g in gaps), (sub, times)
        renewed += annual[sub] and len(times) > 1
    assert renewed > 50 and comebacks > 0
    assert sum(annual.values()) / len(annual) == pytest.approx(0.30, abs=0.05)


def test_failed_attempts_are_retried_at_1_3_7_days_then_the_subscription_is_idle(
    source_db_factory: Callable[[], str],
) -> None:
    dsn = source_db_factory()
    # Many failures and no voluntary changes, so every status change is dunning's.
    config = GeneratorConfig(
        rows_per_cycle=12,
        seed=23,
        billing=BillingRates(failure=0.3, retry_failure=0.7),
        changes=ChangeRates(subscription_changes=0.0),
    )
    _seed(dsn, config, months=3)
    attempts: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    statuses: dict[int, str] = {}
    for p in _payments(dsn):
        attempts[p["sub"]].append((p["paid_at"], p["status"]))
        statuses[p["sub"]] = p["sub_status"]
    exhausted = recovered = 0
    for sub, rows in attempts.items():
        for k, (due, status) in enumerate(rows):
            if status != "failed" or (k and rows[k - 1][1] == "failed"):
                continue  # only the anniversary attempt that opens a dunning run
            run = [rows[k]]
            while len(run) < 4 and run[-1][1] == "failed" and k + len(run) < len(rows):
                run.append(rows[k + len(run)])
            retries = run[1:]
            expected = [due + timedelta(days=d) for d in (1, 3, 7)]
            assert [r[0] for r in retries] == expected[: len(retries)], (sub, rows)
            outcome = [r[1] for r in retries]
            if "succeeded" in outcome or "refunded" in outcome:
                recovered += 1
            elif len(retries) == 3:
                # The last retry failed: idle, and never billed again.
                exhausted += 1
                assert statuses[sub] == "idle", (sub, rows)
                assert rows[k + 3] == rows[-1], (sub, rows)
    assert exhausted > 20 and recovered > 20


def test_the_same_seed_and_start_give_the_same_history(
    source_db_factory: Callable[[], str],
) -> None:
    dumps = []
    for seed in (5, 5, 6):
        dsn = source_db_factory()
        _seed(dsn, GeneratorConfig(rows_per_cycle=6, seed=seed), months=2)
        with psycopg.connect(dsn) as conn:
            dumps.append(
                [
                    conn.execute(f"select * from app.{t} order by id").fetchall()
                    for t in ("users", "subscriptions", "payments")
                ]
            )
    assert dumps[0] == dumps[1]
    assert dumps[0] != dumps[2]


def test_a_retry_fails_at_the_failure_rate_unless_configured_otherwise(
    source_db_factory: Callable[[], str],
) -> None:
    dsn = source_db_factory()
    # Only the failure rate is set: retries must fail as often as anniversary attempts.
    config = GeneratorConfig(
        rows_per_cycle=12,
        seed=29,
        billing=BillingRates(failure=0.25),
        changes=ChangeRates(subscription_changes=0.0),
    )
    _seed(dsn, config, months=3)
    retries = [p for p in _payments(dsn) if _retry(p)]
    failed = sum(p["status"] == "failed" for p in retries)
    # Over a thousand retries: the share's standard error is about a point, so the tolerance
    # is five of them, and a retry rate of its own (formerly 0.5) would be twenty away.
    assert len(retries) > 1000
    assert failed / len(retries) == pytest.approx(0.25, abs=0.05), (failed, len(retries))
    assert BillingRates().retry_failure_rate == BillingRates().failure == 0.05
    assert BillingRates(failure=0.2, retry_failure=0.9).retry_failure_rate == 0.9


# Amounts as written, one row per charge: the test reads the price that was charged.
_CLEAN_AMOUNTS = DirtRates(
    amount_format=0.0,
    amount_unparseable=0.0,
    amount_negative=0.0,
    duplicate_payment=0.0,
    orphan_payment=0.0,
)


def _attempts(conn: psycopg.Connection[Any], subs: list[int]) -> dict[int, list[tuple[Any, ...]]]:
    rows = conn.execute(
        "select subscription_id, paid_at, amount, lower(trim(status)) from app.payments "
        "where subscription_id = any(%s) order by subscription_id, paid_at, id",
        (subs,),
    ).fetchall()
    attempts: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for sub, paid_at, amount, status in rows:
        attempts[sub].append((paid_at, Decimal(amount), status))
    return attempts


def test_a_retry_after_a_plan_change_charges_the_failed_invoice_then_the_new_plan(
    source_db_factory: Callable[[], str],
) -> None:
    dsn = source_db_factory()
    start = datetime(2025, 3, 3, tzinfo=UTC)
    quiet = ChangeRates(subscription_changes=0.0, late_rows=0.0)

    def config(failure: float, rows: int) -> GeneratorConfig:
        return GeneratorConfig(
            rows_per_cycle=rows,
            seed=3,
            dirt=_CLEAN_AMOUNTS,
            changes=quiet,
            billing=BillingRates(failure=failure, annual_share=0.0),
        )

    with psycopg.connect(dsn) as conn:
        prices = {
            name: price
            for name, price in conn.execute("select lower(name), monthly_price from app.plans")
        }
        # Every first attempt fails: each subscription has an open invoice at its old plan.
        generate_cycle(conn, config(1.0, 40), start)
        subs = conn.execute(
            "select id, lower(trim(plan)) from app.subscriptions "
            "where lower(trim(plan)) <> 'platinum' order by id"
        ).fetchall()
        assert len(subs) >= 5
        ids = [sub for sub, _ in subs]
        old_plan = dict(subs)
        # An upgrade before the retry: it takes effect at once for MRR, and is charged from the
        # next anniversary.
        conn.execute(
            "update app.subscriptions set plan = 'Platinum', updated_at = %s where id = any(%s)",
            (start + timedelta(hours=2), ids),
        )
        # And a price change: the open invoices keep their amounts, later ones pay the new price.
        conn.execute("update app.plans set monthly_price = monthly_price + 1")
        new_platinum = prices["platinum"] + 1
        # A ledger row written before invoice amounts were kept has none: its retry is priced
        # from the current plan, as before.
        legacy = ids[-1]
        conn.execute(
            f"update {LEDGER_SCHEMA}.billing set amount_cents = null where subscription_id = %s",
            (legacy,),
        )
        conn.commit()
        # The first retry (a day later) succeeds, then the next anniversary is charged.
        generate_cycle(conn, config(0.0, 0), start + timedelta(days=1, hours=1))
        generate_cycle(conn, config(0.0, 0), start + timedelta(days=32))
        attempts = _attempts(conn, ids)
    for sub in ids:
        first, retry, renewal = attempts[sub]
        assert first[2] == "failed" and retry[2] == "succeeded" and renewal[2] == "succeeded"
        assert retry[0] - first[0] == timedelta(days=1)
        assert first[1] == prices[old_plan[sub]]
        assert retry[1] == (new_platinum if sub == legacy else prices[old_plan[sub]])
        assert renewal[1] == new_platinum


def test_a_ledger_without_invoice_amounts_gains_the_column(
    source_db_factory: Callable[[], str],
) -> None:
    dsn = source_db_factory()
    with psycopg.connect(dsn) as conn:
        conn.execute(f"alter table {LEDGER_SCHEMA}.billing drop column amount_cents")
        conn.commit()
        migrate(conn)
        columns = conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = 'billing'",
            (LEDGER_SCHEMA,),
        ).fetchall()
        summary = generate_cycle(conn, GeneratorConfig(rows_per_cycle=50, seed=1))
    assert ("amount_cents",) in columns
    assert summary.inserted["payments"] > 0
