"""The source schema of data contract section 1, as idempotent migrations."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "app"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True


def _table(*columns: Column) -> tuple[Column, ...]:
    """Every table has a stable surrogate key and the two timestamps; `updated_at` is the sync cursor."""
    return (
        Column("id", "bigint", nullable=False),
        *columns,
        Column("created_at", "timestamp with time zone", nullable=False),
        Column("updated_at", "timestamp with time zone", nullable=False),
    )


TABLES: dict[str, tuple[Column, ...]] = {
    "plans": _table(
        Column("name", "text"),
        Column("monthly_price", "numeric(10,2)"),
        Column("annual_price", "numeric(10,2)"),
        Column("currency", "character(3)"),
    ),
    "users": _table(
        Column("uid", "uuid"),
        Column("first_name", "text"),
        Column("last_name", "text"),
        Column("email", "text"),
        Column("phone", "text"),
        Column("date_of_birth", "text"),
        Column("country", "text"),
        Column("password", "text"),
        Column("social_insurance_number", "text"),
        Column("deleted_at", "timestamp with time zone"),
    ),
    "banks": _table(
        Column("user_id", "bigint"),
        Column("bank_name", "text"),
        Column("account_number", "text"),
        Column("iban", "text"),
        Column("routing_number", "text"),
        Column("swift_bic", "text"),
    ),
    "credit_cards": _table(
        Column("user_id", "bigint"),
        Column("card_number", "text"),
        Column("card_type", "text"),
        Column("expiry", "text"),
    ),
    "subscriptions": _table(
        Column("user_id", "bigint"),
        Column("plan", "text"),
        Column("status", "text"),
        Column("billing_period", "text"),
        Column("payment_method", "text"),
        Column("started_at", "timestamp with time zone"),
        Column("cancelled_at", "timestamp with time zone"),
    ),
    "payments": _table(
        Column("subscription_id", "bigint"),
        Column("user_id", "bigint"),
        Column("charge_id", "text"),
        Column("amount", "text"),
        Column("discount_amount", "numeric(10,2)"),
        Column("currency", "text"),
        Column("status", "text"),
        Column("paid_at", "timestamp with time zone"),
    ),
}

# Foreign keys are deliberately not enforced: orphans are part of the dirt (D8).
_UNIQUE = {"users": ("uid",)}


def ddl() -> list[str]:
    """Statements that create the schema; each is safe to run again."""
    statements = [f"create schema if not exists {SCHEMA}"]
    for table, columns in TABLES.items():
        cols = ",\n  ".join(
            f"{c.name} {c.type}{'' if c.nullable else ' not null'}" for c in columns
        )
        statements.append(
            f"create table if not exists {SCHEMA}.{table} (\n  {cols},\n  primary key (id)\n)"
        )
        for unique_col in _UNIQUE.get(table, ()):
            statements.append(
                f"create unique index if not exists {table}_{unique_col}_key "
                f"on {SCHEMA}.{table} ({unique_col})"
            )
        statements.append(
            f"create index if not exists {table}_updated_at_idx on {SCHEMA}.{table} (updated_at)"
        )
        # The sync's reconciliation sums (id, updated_at) over id ranges: with the cursor in the
        # index, those scans read the index only, not the table.
        statements.append(
            f"create index if not exists {table}_id_updated_at_idx "
            f"on {SCHEMA}.{table} (id) include (updated_at)"
        )
    return statements
