"""Idempotent schema migrations and the one-time plan seed of the source database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from source_generator.schema import SCHEMA, ddl

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
        for statement in ddl():
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
