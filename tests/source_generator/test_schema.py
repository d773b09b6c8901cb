"""The migrated source schema matches data contract section 1, column by column."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from core.paths import REPO_ROOT
from source_generator import PLANS, migrate

pytestmark = pytest.mark.postgres

# Data contract section 1, transcribed: (column, PostgreSQL type) in contract order.
_KEYS = [("id", "bigint")]
_TIMES = [("created_at", "timestamp with time zone"), ("updated_at", "timestamp with time zone")]
CONTRACT: dict[str, list[tuple[str, str]]] = {
    "users": [
        ("uid", "uuid"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("email", "text"),
        ("phone", "text"),
        ("date_of_birth", "text"),
        ("country", "text"),
        ("password", "text"),
        ("social_insurance_number", "text"),
        ("deleted_at", "timestamp with time zone"),
    ],
    "banks": [
        ("user_id", "bigint"),
        ("bank_name", "text"),
        ("account_number", "text"),
        ("iban", "text"),
        ("routing_number", "text"),
        ("swift_bic", "text"),
    ],
    "credit_cards": [
        ("user_id", "bigint"),
        ("card_number", "text"),
        ("card_type", "text"),
        ("expiry", "text"),
    ],
    "plans": [
        ("name", "text"),
        ("monthly_price", "numeric(10,2)"),
        ("annual_price", "numeric(10,2)"),
        ("currency", "character(3)"),
    ],
    "subscriptions": [
        ("user_id", "bigint"),
        ("plan", "text"),
        ("status", "text"),
        ("billing_period", "text"),
        ("payment_method", "text"),
        ("started_at", "timestamp with time zone"),
        ("cancelled_at", "timestamp with time zone"),
    ],
    "payments": [
        ("subscription_id", "bigint"),
        ("user_id", "bigint"),
        ("charge_id", "text"),
        ("amount", "text"),
        ("discount_amount", "numeric(10,2)"),
        ("currency", "text"),
        ("status", "text"),
        ("paid_at", "timestamp with time zone"),
    ],
}


def _columns(conn: psycopg.Connection) -> dict[str, dict[str, tuple[str, bool]]]:
    rows = conn.execute(
        """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'app' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
        order by c.relname, a.attnum
        """
    ).fetchall()
    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, type_, not_null in rows:
        tables.setdefault(table, {})[column] = (type_, not_null)
    return tables


def test_every_table_and_column_of_the_contract_exists_with_its_type(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        actual = _columns(conn)
    assert set(actual) == set(CONTRACT)
    for table, columns in CONTRACT.items():
        expected = {name: type_ for name, type_ in _KEYS + columns + _TIMES}
        got = {name: type_ for name, (type_, _) in actual[table].items()}
        assert got == expected, table
        not_null = {name for name, (_, nn) in actual[table].items() if nn}
        assert not_null == {"id", "created_at", "updated_at"}, table


def test_keys_unique_uid_cursor_indexes_and_no_foreign_keys(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        primary_keys = dict(
            conn.execute(
                """
                select tc.table_name, string_agg(kcu.column_name, ',')
                from information_schema.table_constraints tc
                join information_schema.key_column_usage kcu using (constraint_schema, constraint_name)
                where tc.table_schema = 'app' and tc.constraint_type = 'PRIMARY KEY'
                group by tc.table_name
                """
            ).fetchall()
        )
        indexes = conn.execute(
            "select tablename, indexdef from pg_indexes where schemaname = 'app'"
        ).fetchall()
        foreign_keys = conn.execute(
            "select count(*) from information_schema.table_constraints "
            "where table_schema = 'app' and constraint_type = 'FOREIGN KEY'"
        ).fetchone()
    assert primary_keys == {table: "id" for table in CONTRACT}
    for table in CONTRACT:
        assert any(t == table and re.search(r"\(updated_at\)$", d) for t, d in indexes), (
            f"{table} has no index on its sync cursor updated_at"
        )
        assert any(
            t == table and re.search(r"\(id\) INCLUDE \(updated_at\)$", d) for t, d in indexes
        ), f"{table} has no (id) include (updated_at) index for the sync's reconciliation"
    assert any(t == "users" and "UNIQUE" in d and "(uid)" in d for t, d in indexes)
    assert foreign_keys == (0,)


def test_migrations_are_idempotent_and_seed_the_plans_once(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        conn.execute("update app.plans set monthly_price = 11.00 where name = 'Basic'")
        conn.commit()
        migrate(conn)
        migrate(conn)
        plans = conn.execute(
            "select id, name, monthly_price, annual_price, currency from app.plans order by id"
        ).fetchall()
    assert [p[1] for p in plans] == ["Basic", "Bronze", "Standard", "Gold", "Platinum"]
    assert all(p[4] == "USD" for p in plans)
    # A re-run keeps a changed price: a price change is an update, never undone by a migration.
    assert str(plans[0][2]) == "11.00"
    assert [(p.monthly_price, p.annual_price) for p in PLANS[1:]] == [
        (p[2], p[3]) for p in plans[1:]
    ]


def test_migrating_an_empty_database_creates_everything(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn) as conn:
        migrate(conn)
        assert set(_columns(conn)) == set(CONTRACT)


def _contract_file() -> Path | None:
    for base in (REPO_ROOT.parent, REPO_ROOT.parent.parent):
        candidate = base / "shared" / "contract" / "DATA_CONTRACT.md"
        if candidate.exists():
            return candidate
    return None


def test_the_transcription_above_matches_the_contract_file() -> None:
    contract = _contract_file()
    if contract is None:
        pytest.skip("the shared data contract is not next to this checkout")
    parsed: dict[str, list[str]] = {}
    for line in contract.read_text().splitlines():
        match = re.match(r"^\| `app\.(\w+)` \| (.+) \|$", line)
        if match:
            parsed[match.group(1)] = re.findall(r"`(\w+) ", match.group(2))
    assert parsed == {t: [name for name, _ in cols] for t, cols in CONTRACT.items()}
