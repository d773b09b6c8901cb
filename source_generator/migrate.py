"""Idempotent schema migrations and the one-time plan seed of the source database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from source_generator.billing import (
    ACCOUNT_COLUMNS,
    ACCOUNT_TYPES,
    LEDGER_SCHEMA,
    Account,
    ledger_ddl,
    ledger_row,
    period_at,
)
from source_generator.schema import SCHEMA, ddl
from source_generator.writer import copy_binary

# Serialises migrations and cycles of concurrent generators on one database.
ADVISORY_LOCK_KEY = 0x6D6470  # "mdp"


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    monthly_price: Decimal
    annual_price: Decimal
    currency: str = "USD"


PLANS: tuple[Plan, ...] = (
    Plan(1, "Basic", Decimal("9.00"), Decimal("90.00")),
    Plan(2, "Bronze", Decimal("19.00"), Decimal("190.00")),
    Plan(3, "Standard", Decimal("29.00"), Decimal("290.00")),
    Plan(4, "Gold", Decimal("49.00"), Decimal("490.00")),
    Plan(5, "Platinum", Decimal("99.00"), Decimal("990.00")),
)


def migrate(conn: psycopg.Connection[Any], clock: datetime | None = None) -> None:
    """Create the schema if needed and seed the plans once; safe to run any number of times."""
    clock = clock or datetime.now(UTC)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        for statement in [*ddl(), *ledger_ddl()]:
            conn.execute(statement)
        # A plan that already exists keeps its price: a price change is an update, not a re-seed.
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(PLANS))
        conn.execute(
            f"insert into {SCHEMA}.plans "
            "(id, name, monthly_price, annual_price, currency, created_at, updated_at) "
            f"values {values} on conflict (id) do nothing",
            [
                v
                for p in PLANS
                for v in (p.id, p.name, p.monthly_price, p.annual_price, p.currency, clock, clock)
            ],
        )
        _open_accounts(conn, clock)


def _open_accounts(conn: psycopg.Connection[Any], clock: datetime) -> None:
    """Give subscriptions written before billing existed a ledger row: billed from their next
    anniversary after `clock`, the current period taken as paid, no discount."""
    rows = conn.execute(
        f"select s.id, s.started_at, lower(trim(s.billing_period)) in ('annual', 'yearly') "
        f"from {SCHEMA}.subscriptions s where s.started_at is not null and not exists "
        f"(select 1 from {LEDGER_SCHEMA}.billing b where b.subscription_id = s.id) order by s.id"
    ).fetchall()
    accounts = []
    for sub_id, started_at, annual in rows:
        current = period_at(started_at, max(clock, started_at), annual)
        account = Account(sub_id, started_at, annual, 0, current, 0, started_at, current)
        account.next_anniversary()
        accounts.append(ledger_row(account))
    if accounts:
        copy_binary(conn, LEDGER_SCHEMA, "billing", ACCOUNT_COLUMNS, ACCOUNT_TYPES, accounts)
