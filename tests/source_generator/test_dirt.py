"""Every dirt kind of contract section 2 lands at its rate, measured from the rows themselves."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from source_generator import DirtRates, GeneratorConfig, generate_cycle
from source_generator.config import ChangeRates, dirt_from_env, parse_overrides
from tests.contract_marts import parse_amount

pytestmark = pytest.mark.postgres

START = datetime(2025, 3, 1, tzinfo=UTC)
TOLERANCE = 0.5  # contract: ±50% relative on 10,000+ rows

CANONICAL = {
    "subscriptions.status": {"active", "idle", "blocked", "cancelled"},
    "payments.status": {"succeeded", "failed", "refunded"},
    "subscriptions.billing_period": {"monthly", "annual"},
    "subscriptions.plan": {"basic", "bronze", "standard", "gold", "platinum"},
    "payments.currency": {"usd"},
}
SYNONYMS = {"canceled": "cancelled", "yearly": "annual"}
CATEGORICAL = [
    ("users", "country"),
    ("banks", "bank_name"),
    ("credit_cards", "card_type"),
    ("subscriptions", "plan"),
    ("subscriptions", "status"),
    ("subscriptions", "billing_period"),
    ("payments", "currency"),
    ("payments", "status"),
]


def parse_dob(text: str) -> date | None:
    """The contract's D11 formats: YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY, epoch seconds."""
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    if re.fullmatch(r"\d+", text):
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(text))).date()
    return None


def _rows(conn: psycopg.Connection, query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def dirty_source(source_db_factory: Callable[[], str]) -> str:
    """Two cycles of 50,000 rows each, a day apart: ~35,000 subscriptions and their first
    payments, ~30,000 users, and enough subscription changes for every status synonym to show
    up. Changes scale with the time a cycle covers, so the second cycle covers a whole day."""
    dsn = source_db_factory()
    with psycopg.connect(dsn) as conn:
        for k in range(2):
            generate_cycle(
                conn,
                GeneratorConfig(
                    rows_per_cycle=50_000,
                    seed=11,
                    changes=ChangeRates(subscription_changes=0.5),
                ),
                START + k * timedelta(days=1),
            )
    return dsn


def _assert_rate(name: str, hits: int, total: int, expected: float) -> None:
    assert total >= 10_000, f"{name}: only {total} rows measured"
    rate = hits / total
    low, high = expected * (1 - TOLERANCE), expected * (1 + TOLERANCE)
    assert low <= rate <= high, f"{name}: {rate:.4f} outside [{low:.4f}, {high:.4f}]"


def test_d1_case_whitespace_and_synonyms_on_categorical_text(dirty_source: str) -> None:
    hits = total = 0
    with psycopg.connect(dirty_source) as conn:
        for table, column in CATEGORICAL:
            values = [v for (v,) in _rows(conn, f"select {column} from app.{table}")]
            canonical = CANONICAL.get(f"{table}.{column}")
            for value in values:
                clean = SYNONYMS.get(value.strip().lower(), value.strip().lower())
                if canonical is not None:
                    assert clean in canonical, f"{table}.{column}: {value!r} has no canonical form"
                total += 1
                hits += value != clean
        statuses = {v for (v,) in _rows(conn, "select distinct status from app.subscriptions")}
        billing = {
            v for (v,) in _rows(conn, "select distinct billing_period from app.subscriptions")
        }
        plans = {v for (v,) in _rows(conn, "select lower(name) from app.plans")}
        used_plans = {
            v.strip().lower() for (v,) in _rows(conn, "select distinct plan from app.subscriptions")
        }
    _assert_rate("D1", hits, total, 0.20)
    # D2 and D3: the synonyms the contract names do occur.
    assert {"canceled", "CANCELLED"} <= {s.strip() for s in statuses}
    assert {"yearly", "Yearly", "Monthly"} <= {b.strip() for b in billing}
    assert used_plans == plans


def test_d4_to_d8_and_d12_on_payments(dirty_source: str) -> None:
    with psycopg.connect(dirty_source) as conn:
        payments = _rows(
            conn,
            "select p.id, p.amount, p.charge_id, p.discount_amount, s.id is not null "
            "from app.payments p left join app.subscriptions s on s.id = p.subscription_id "
            "order by p.id",
        )
    total = len(payments)
    plain = re.compile(r"-?\d+\.\d{2}")
    parsed = [parse_amount(amount) for _, amount, _, _, _ in payments]
    non_plain = sum(
        1
        for (_, amount, _, _, _), value in zip(payments, parsed, strict=True)
        if value is not None and not plain.fullmatch(amount)
    )
    unparseable = sum(value is None for value in parsed)
    negative = sum(value is not None and value < 0 for value in parsed)
    seen: set[str] = set()
    duplicates = 0
    for _, _, charge_id, _, _ in payments:
        duplicates += charge_id in seen
        seen.add(charge_id)
    orphans = sum(not has_subscription for *_, has_subscription in payments)
    null_discounts = sum(discount is None for _, _, _, discount, _ in payments)

    _assert_rate("D4", non_plain, total, 0.15)
    _assert_rate("D5", unparseable, total, 0.005)
    _assert_rate("D6", negative, total, 0.002)
    _assert_rate("D7", duplicates, total, 0.01)
    _assert_rate("D8", orphans, total, 0.005)
    _assert_rate("D12", null_discounts, total, 0.10)
    # Every parseable amount is a price of a plan or its negation (no stray values).
    assert all(v is None or abs(v) in {Decimal(x) for x in _PRICES} for v in parsed)


_PRICES = (
    "9.00",
    "19.00",
    "29.00",
    "49.00",
    "99.00",
    "90.00",
    "190.00",
    "290.00",
    "490.00",
    "990.00",
)


def test_d7_duplicates_repeat_the_whole_payment_under_a_new_id(dirty_source: str) -> None:
    with psycopg.connect(dirty_source) as conn:
        pairs = _rows(
            conn,
            """
            select a.id, b.id, a.subscription_id = b.subscription_id and a.user_id = b.user_id
                   and a.amount is not distinct from b.amount and a.paid_at = b.paid_at
            from app.payments a join app.payments b on a.charge_id = b.charge_id and a.id < b.id
            """,
        )
    assert pairs
    assert all(same for _, _, same in pairs)


def test_d9_d10_emails_and_d11_dates_of_birth(dirty_source: str) -> None:
    with psycopg.connect(dirty_source) as conn:
        users = _rows(conn, "select email, date_of_birth from app.users")
    total = len(users)
    invalid = sum("@" not in email for email, _ in users)
    cased = sum("@" in email and email != email.strip().lower() for email, _ in users)
    iso = re.compile(r"\d{4}-\d{2}-\d{2}")
    non_iso = sum(not iso.fullmatch(dob) for _, dob in users)
    unparseable = sum(parse_dob(dob) is None for _, dob in users)
    assert total >= 10_000
    _assert_rate("D9", cased, total, 0.10)
    _assert_rate("D10", invalid, total, 0.02)
    _assert_rate("D11 non-ISO", non_iso, total, 0.30)
    _assert_rate("D11 unparseable", unparseable, total, 0.01)
    parsed = [parse_dob(dob) for _, dob in users]
    assert all(d is None or date(1950, 1, 1) <= d <= date(2006, 12, 31) for d in parsed)


def test_rates_are_configurable_and_zero_means_clean(
    source_db_factory: Callable[[], str],
) -> None:
    zero = DirtRates(**{name: 0.0 for name in DirtRates.__dataclass_fields__})
    dsn = source_db_factory()
    with psycopg.connect(dsn) as conn:
        generate_cycle(conn, GeneratorConfig(rows_per_cycle=5000, seed=3, dirt=zero), START)
        generate_cycle(
            conn,
            GeneratorConfig(rows_per_cycle=5000, seed=3, dirt=zero),
            START + timedelta(hours=2),
        )
        for table, column in CATEGORICAL:
            dirty = conn.execute(
                f"select count(*) from app.{table} where {column} <> lower(trim({column}))"
            ).fetchone()
            assert dirty == (0,), f"{table}.{column}"
        amounts = [a for (a,) in _rows(conn, "select amount from app.payments")]
        assert all(a is not None and re.fullmatch(r"\d+\.\d{2}", a) for a in amounts)
        assert conn.execute(
            "select count(*) from app.payments where discount_amount is null "
            "or subscription_id not in (select id from app.subscriptions)"
        ).fetchone() == (0,)
        assert conn.execute(
            "select count(*) - count(distinct charge_id) from app.payments"
        ).fetchone() == (0,)
        emails = [e for (e,) in _rows(conn, "select email from app.users")]
        assert all("@" in e and e == e.strip().lower() for e in emails)

    high = dirt_from_env(["D4=0.6", "D12=0.5"])
    dsn = source_db_factory()
    with psycopg.connect(dsn) as conn:
        generate_cycle(conn, GeneratorConfig(rows_per_cycle=20_000, seed=3, dirt=high), START)
        amounts = [a for (a,) in _rows(conn, "select amount from app.payments")]
        nulls = conn.execute(
            "select avg((discount_amount is null)::int) from app.payments"
        ).fetchone()
    non_plain = sum(a is not None and not re.fullmatch(r"-?\d+\.\d{2}", a) for a in amounts)
    assert 0.5 < non_plain / len(amounts) < 0.7
    assert nulls is not None and 0.45 < float(nulls[0]) < 0.55


def test_bad_rates_are_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="D4 must be between 0 and 1"):
        dirt_from_env(["D4=1.5"])
    with pytest.raises(ValueError, match="unknown dirt kind 'D99'"):
        parse_overrides(["D99=0.1"])
    with pytest.raises(ValueError, match=r"must look like D4=0\.15"):
        parse_overrides(["D4"])
    monkeypatch.setenv("MDP_GENERATOR_DIRT", "D9=0.3,D10=0.05")
    rates = dirt_from_env(["D10=0.07"])
    assert (rates.email_case, rates.email_invalid) == (0.3, 0.07)


# ---- D1 per column, D2 and D3 per synonym kind ---------------------------------------------
# The pooled D1 rate above would pass with one column always dirty and another never dirty:
# each column, and each canonical value that has synonyms, must land at the contract's rate.
# Columns of the smaller tables hold a few thousand rows; at a 20% rate the binomial standard
# deviation there is under one point, far inside the contract's ±50% (ten points). Cancelled
# subscriptions are about 1,500 (cancellations are updates, made over the second cycle's day):
# about one point, and the seeded source is the same on every run.
D1_RATE = 0.20
D1_MIN_ROWS = 2_000
SYNONYM_MIN_ROWS = 1_000


def _assert_column_rate(
    name: str, hits: int, total: int, expected: float, min_rows: int = D1_MIN_ROWS
) -> None:
    assert total >= min_rows, f"{name}: only {total} rows measured"
    rate = hits / total
    low, high = expected * (1 - TOLERANCE), expected * (1 + TOLERANCE)
    assert low <= rate <= high, f"{name}: {rate:.4f} outside [{low:.4f}, {high:.4f}]"


def _clean(value: str) -> str:
    return SYNONYMS.get(value.strip().lower(), value.strip().lower())


@pytest.mark.parametrize(("table", "column"), CATEGORICAL, ids=[f"{t}.{c}" for t, c in CATEGORICAL])
def test_d1_rate_on_each_categorical_column(dirty_source: str, table: str, column: str) -> None:
    with psycopg.connect(dirty_source) as conn:
        values = [v for (v,) in _rows(conn, f"select {column} from app.{table}")]
    dirty = sum(value != _clean(value) for value in values)
    _assert_column_rate(f"D1 {table}.{column}", dirty, len(values), D1_RATE)


@pytest.mark.parametrize(
    ("kind", "table", "column", "canonical", "synonyms"),
    [
        ("D2", "subscriptions", "status", "cancelled", {"canceled", "cancelled", "CANCELLED"}),
        ("D3", "subscriptions", "billing_period", "annual", {"annual", "yearly", "Yearly"}),
        ("D3", "subscriptions", "billing_period", "monthly", {"monthly", "Monthly"}),
    ],
    ids=["D2-cancelled", "D3-annual", "D3-monthly"],
)
def test_synonym_kinds_are_dirty_at_the_d1_rate(
    dirty_source: str,
    kind: str,
    table: str,
    column: str,
    canonical: str,
    synonyms: set[str],
) -> None:
    """Each value with synonyms is written dirty at D1's rate, and in the synonyms the contract names."""
    with psycopg.connect(dirty_source) as conn:
        values = [v for (v,) in _rows(conn, f"select {column} from app.{table}")]
    of_kind = [v for v in values if _clean(v) == canonical]
    dirty = [v for v in of_kind if v != canonical]
    _assert_column_rate(
        f"{kind} {table}.{column}={canonical}",
        len(dirty),
        len(of_kind),
        D1_RATE,
        min_rows=SYNONYM_MIN_ROWS,
    )
    assert synonyms - {canonical} <= {v.strip() for v in dirty}, sorted(set(dirty))[:20]
