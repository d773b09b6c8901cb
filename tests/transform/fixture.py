"""A small dirty raw layer (contract section 3) and the marts expected from it, computed in Python."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from source_generator.schema import TABLES
from tests.contract_marts import billing_period, canonical, money, parse_amount, subscription_status

AIRBYTE_COLUMNS = (
    ("_airbyte_raw_id", "varchar", "varchar"),
    ("_airbyte_extracted_at", "timestamptz", "timestamp_tz"),
    ("_airbyte_meta", "json", "variant"),
    ("_airbyte_generation_id", "bigint", "number(38,0)"),
)

Row = dict[str, Any]
NEW_YORK = ZoneInfo("America/New_York")


def month_start(d: datetime | date, shift: int = 0) -> date:
    """First day of the month of `d`, moved by `shift` months."""
    index = d.year * 12 + d.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def at(d: date, day: int = 1, hour: int = 12) -> datetime:
    return datetime(d.year, d.month, day, hour, tzinfo=UTC)


@dataclass
class Fixture:
    now: datetime
    rows: dict[str, list[Row]]


def build(
    now: datetime | None = None, seed: int = 7, synced_ago: timedelta = timedelta(hours=1)
) -> Fixture:
    """Hand-written dirty rows for every rule, plus a seeded random bulk, synced `synced_ago`."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    m0 = month_start(now)
    ms = [month_start(now, -k) for k in range(0, 8)]  # ms[k] = k months ago
    synced = now - synced_ago
    rows: dict[str, list[Row]] = {t: [] for t in TABLES}

    def add(table: str, **values: Any) -> Row:
        row: Row = {c.name: None for c in TABLES[table]}
        row.update(values)
        row.setdefault("created_at", at(ms[6]))
        if row["created_at"] is None:
            row["created_at"] = at(ms[6])
        if row["updated_at"] is None:
            row["updated_at"] = row["created_at"]
        rows[table].append(row)
        return row

    plans = [
        ("Basic", "10.00", "100.00", "USD"),
        ("Bronze", "15.00", "150.00", " usd"),
        ("Standard", "25.00", "250.00", "USD"),
        ("Gold", "40.00", "400.00", "Usd "),
        ("Platinum", "99.99", "999.99", "USD"),
    ]
    for i, (name, monthly, annual, cur) in enumerate(plans, start=1):
        add(
            "plans",
            id=i,
            name=name,
            monthly_price=Decimal(monthly),
            annual_price=Decimal(annual),
            currency=cur,
        )

    user_specs = [
        # email (D9, D10), date_of_birth (D11), deleted
        ("  Alice@Example.COM ", "1990-04-12", None),
        ("bob@example.com", "1985/11/30", None),
        ("carol.example.com", "24.12.1979", None),
        ("DAVE@EXAMPLE.COM", "631152000", None),
        ("erin@example.com", "not a date", at(ms[0], 1, 1)),
        (None, "-86400", None),
        ("frank@example.com", "1992-13-45", None),
        (" gina@example.org", "1970-01-01", None),
    ]
    for i, (email, dob, deleted) in enumerate(user_specs, start=1):
        add(
            "users",
            id=i,
            uid=str(uuid.UUID(int=i)),
            first_name=f"First{i}",
            last_name=f"Last{i}",
            email=email,
            phone=f"+1-555-010-{i:04d}",
            date_of_birth=dob,
            country=rng.choice(["US", " us", "Ca", "GB "]),
            password=f"secret-{i}",
            social_insurance_number=f"123-45-{i:04d}",
            deleted_at=deleted,
            updated_at=deleted or at(ms[6]),
        )
    for i in range(1, 9):
        add(
            "banks",
            id=i,
            user_id=i if i != 8 else 99,
            bank_name=rng.choice(["Chase", " chase ", "HSBC"]),
            account_number=f"00012345{i:04d}",
            iban=f"GB29 NWBK 6016 1331 {i:04d}",
            routing_number="021000021",
            swift_bic="nwbkgb2l",
        )
        add(
            "credit_cards",
            id=i,
            user_id=i,
            card_number=f"4111 1111 1111 {i:04d}",
            card_type=rng.choice(["Visa", " VISA", "mastercard"]),
            expiry="12/29",
        )

    sub_specs = [
        # user, plan (D1), status (D2), billing (D3), started month index, cancelled
        (1, "Basic", "active", "monthly", 5, None),
        (1, " GOLD", "Active ", "Yearly", 3, None),
        (2, "standard", "CANCELLED", "monthly", 6, at(ms[2], 10)),
        (3, "Platinum ", "active", "annual", 4, None),
        (3, "bronze", "canceled", "Monthly", 2, at(ms[1], 3)),
        (4, "Platinum", "ACTIVE", "yearly", 1, None),
        (5, "Gold", "active", "monthly", 6, None),  # soft-deleted user: excluded from MRR
        (6, "Basic", "idle", "monthly", 3, None),
        (7, "Standard", " active", "annual", 0, None),
        (8, "basic", "blocked", "annual", 2, None),
        (2, "Platinum", "active", "monthly", 2, None),
        (8, "Gold", "cancelled", "annual", 5, at(ms[0], 1, 6)),
    ]
    for i, (uid_, plan, status, billing, start_k, cancelled) in enumerate(sub_specs, start=1):
        started = at(ms[start_k], 2)
        add(
            "subscriptions",
            id=i,
            user_id=uid_,
            plan=plan,
            status=status,
            billing_period=billing,
            payment_method=rng.choice(["card", "bank", " Card"]),
            started_at=started,
            cancelled_at=cancelled,
            created_at=started,
            updated_at=cancelled or started,
        )

    payment_id = 0

    def pay(sub: int | None, amount: Any, status: str, paid: datetime, **extra: Any) -> Row:
        nonlocal payment_id
        payment_id += 1
        user = sub_specs[sub - 1][0] if sub is not None and 1 <= sub <= len(sub_specs) else 1
        values: Row = {
            "id": payment_id,
            "subscription_id": sub,
            "user_id": user,
            "charge_id": f"ch_{payment_id:06d}",
            "amount": amount,
            "discount_amount": Decimal("1.50"),
            "currency": "USD",
            "status": status,
            "paid_at": paid,
            "created_at": paid,
            "updated_at": paid,
        }
        values.update(extra)
        return add("payments", **values)

    # One payment per rule, on fixed dates.
    pay(1, "10.00", "succeeded", at(ms[3], 2))
    pay(1, "$10.00", "Succeeded", at(ms[2], 2))  # D4 $
    pay(1, " 10.00 ", " SUCCEEDED", at(ms[1], 2))  # D4 spaces
    pay(1, "USD 10.00", "succeeded", at(ms[0], 2), discount_amount=None)  # D4 USD, D12
    pay(2, "400,00", "succeeded", at(ms[3], 2))  # D4 comma decimal
    pay(2, "12,5", "failed", at(ms[2], 2))  # D4 one decimal digit after comma
    pay(3, "N/A", "succeeded", at(ms[2], 2))  # D5
    pay(3, "", "succeeded", at(ms[2], 3))  # D5
    pay(3, None, "succeeded", at(ms[2], 4))  # D5
    pay(3, "10.00$", "succeeded", at(ms[2], 5))  # D4: a $ that does not lead -> D5
    pay(1, "usd 10.005", "succeeded", at(ms[3], 3))  # D4: USD in any case, half-up to 10.01
    pay(4, "-999.99", "succeeded", at(ms[1], 2))  # D6
    original = pay(4, "999.99", "refunded", at(ms[1], 3))
    pay(4, "999.99", "refunded", at(ms[1], 3), charge_id=original["charge_id"])  # D7
    pay(404, "25.00", "succeeded", at(ms[1], 4))  # D8
    pay(None, "25.00", "succeeded", at(ms[1], 5))  # D8 (no subscription)
    # Either side of a month boundary in UTC; the second written with a New York offset,
    # where it is still the previous month.
    boundary = datetime(ms[1].year, ms[1].month, 1, tzinfo=UTC)
    pay(6, "999.99", "succeeded", boundary - timedelta(minutes=1))
    pay(6, "999.99", "succeeded", (boundary + timedelta(minutes=10)).astimezone(NEW_YORK))

    # Seeded bulk: every dirt, at roughly the contract's rates and more.
    formats = [
        "{a}",
        "${a}",
        " {a} ",
        "USD {a}",
        "{c}",
        "{a}",
        "{a}",
        "USD{a}",
    ]
    statuses = ["succeeded", "Succeeded ", "failed", "refunded", "SUCCEEDED", "succeeded"]
    charges: list[str] = []
    for _ in range(300):
        sub = rng.randint(1, len(sub_specs))
        value = Decimal(rng.randint(100, 50000)) / 100
        text = rng.choice(formats).format(a=f"{value:.2f}", c=f"{value:.2f}".replace(".", ","))
        roll = rng.random()
        extra: Row = {}
        if roll < 0.03:
            text = rng.choice(["N/A", "", None, "abc"])
        elif roll < 0.05:
            text = f"-{value:.2f}"
        elif roll < 0.08 and charges:
            extra["charge_id"] = rng.choice(charges)
        elif roll < 0.10:
            sub = 1000 + rng.randint(0, 50)
        if rng.random() < 0.1:
            extra["discount_amount"] = None
        elif rng.random() < 0.5:
            extra["discount_amount"] = Decimal(rng.randint(0, 500)) / 100
        paid = now - timedelta(minutes=rng.randint(60, 60 * 24 * 200))
        row = pay(sub, text, rng.choice(statuses), paid, **extra)
        charges.append(row["charge_id"])

    for table_rows in rows.values():
        for row in table_rows:
            row["_airbyte_raw_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
            row["_airbyte_extracted_at"] = synced
            row["_airbyte_meta"] = json.dumps({"changes": [], "sync_id": 1})
            row["_airbyte_generation_id"] = 1
    assert m0 == ms[0]
    return Fixture(now=now, rows=rows)


def _duckdb_type(source_type: str) -> str:
    return {
        "timestamp with time zone": "timestamptz",
        "text": "varchar",
        "character(3)": "varchar",
    }.get(source_type, source_type)


def _snowflake_type(source_type: str) -> str:
    if source_type.startswith("numeric"):
        return source_type.replace("numeric", "number")
    return {
        "timestamp with time zone": "timestamp_tz",
        "bigint": "number(38,0)",
        "uuid": "varchar",
    }.get(source_type, "varchar")


def columns(table: str, dialect: str) -> list[tuple[str, str]]:
    """The raw columns of `table` with their types in `dialect` (duckdb or snowflake)."""
    convert = _duckdb_type if dialect == "duckdb" else _snowflake_type
    cols = [(c.name, convert(c.type)) for c in TABLES[table]]
    cols += [(name, d if dialect == "duckdb" else s) for name, d, s in AIRBYTE_COLUMNS]
    return cols


def write_duckdb(path: Path, fixture: Fixture) -> None:
    """Write the raw layer into a DuckDB file as RAW.POSTGRES_AIRBYTE.<table>."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema if not exists POSTGRES_AIRBYTE")
        for table, table_rows in fixture.rows.items():
            cols = columns(table, "duckdb")
            ddl = ", ".join(f"{name} {type_}" for name, type_ in cols)
            con.execute(f"create or replace table POSTGRES_AIRBYTE.{table} ({ddl})")
            names = [name for name, _ in cols]
            marks = ", ".join("?" for _ in names)
            con.executemany(
                f"insert into POSTGRES_AIRBYTE.{table} ({', '.join(names)}) values ({marks})",
                [[row[n] for n in names] for row in table_rows],
            )
    finally:
        con.close()


# ---- The contract's rules, written independently of the dbt models ----


def rejection(row: Row, first_by_charge: dict[str, int], subscription_ids: set[int]) -> str | None:
    amount = parse_amount(row["amount"])
    if amount is None:
        return "unparseable_amount"
    if amount < 0:
        return "negative_amount"
    if first_by_charge[row["charge_id"]] != row["id"]:
        return "duplicate_charge"
    if row["subscription_id"] not in subscription_ids:
        return "orphan_subscription"
    return None


def expected(fixture: Fixture) -> dict[str, Any]:
    """The three checked marts and the quarantine, per contract sections 2 and 4."""
    rows = fixture.rows
    plans = {canonical(p["name"]): p for p in rows["plans"]}
    plan_names = sorted(p["name"] for p in rows["plans"])
    subscriptions = {s["id"]: s for s in rows["subscriptions"]}
    users = {u["id"]: u for u in rows["users"]}
    first_by_charge: dict[str, int] = {}
    for p in sorted(rows["payments"], key=lambda r: r["id"]):
        first_by_charge.setdefault(p["charge_id"], p["id"])

    quarantine: dict[int, str] = {}
    net_by_plan: dict[str, Decimal] = defaultdict(Decimal)
    succeeded_by_plan: dict[str, int] = defaultdict(int)
    monthly: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for p in rows["payments"]:
        reason = rejection(p, first_by_charge, set(subscriptions))
        if reason:
            quarantine[p["id"]] = reason
            continue
        plan = plans[canonical(subscriptions[p["subscription_id"]]["plan"])]["name"]
        status = canonical(p["status"])
        amount = parse_amount(p["amount"])
        assert amount is not None
        net = amount - (p["discount_amount"] or Decimal(0)) if status == "succeeded" else Decimal(0)
        net_by_plan[plan] += net
        succeeded_by_plan[plan] += status == "succeeded"
        monthly[(month_start(p["paid_at"].astimezone(UTC)), plan)] += net

    mrr_twelfths: dict[str, Decimal] = defaultdict(Decimal)
    active: dict[str, int] = defaultdict(int)
    for s in subscriptions.values():
        user = users.get(s["user_id"])
        if subscription_status(s["status"]) != "active" or (user and user["deleted_at"]):
            continue
        plan = plans[canonical(s["plan"])]
        period = billing_period(s["billing_period"])
        yearly = plan["monthly_price"] * 12 if period == "monthly" else plan["annual_price"]
        mrr_twelfths[plan["name"]] += yearly
        active[plan["name"]] += 1

    return {
        "quarantine": quarantine,
        "net_revenue_by_plan": {
            name: (money(net_by_plan[name]), succeeded_by_plan[name]) for name in plan_names
        },
        "monthly_net_revenue_by_plan": {k: money(v) for k, v in monthly.items()},
        "current_mrr_by_plan": {
            name: (money(mrr_twelfths[name] / 12), active[name]) for name in plan_names
        },
        "current_month": month_start(fixture.now),
    }


def advance(fixture: Fixture) -> Fixture:
    """One more sync: new payments, a refund, an upgrade, a soft delete and a duplicate."""
    synced = fixture.now - timedelta(minutes=5)
    rows = {table: [dict(r) for r in table_rows] for table, table_rows in fixture.rows.items()}
    changed: list[Row] = []

    refunded = next(p for p in rows["payments"] if p["id"] == 1)
    refunded.update(status="Refunded", updated_at=synced)
    changed.append(refunded)

    # Only the user row changes: its active Platinum subscription must leave MRR anyway.
    deleted = next(u for u in rows["users"] if u["id"] == 2)
    deleted.update(deleted_at=synced, updated_at=synced)
    changed.append(deleted)

    upgraded = next(s for s in rows["subscriptions"] if s["id"] == 1)
    upgraded.update(plan=" Standard", updated_at=synced)
    changed.append(upgraded)

    next_id = max(p["id"] for p in rows["payments"]) + 1
    template = {c.name: None for c in TABLES["payments"]}
    for offset, (sub, amount, status) in enumerate(
        [(2, "USD 33,33", "succeeded"), (9, "20.83", "SUCCEEDED"), (11, "99.99", "failed")]
    ):
        paid = fixture.now - timedelta(minutes=30 + offset)
        payment = template | {
            "id": next_id + offset,
            "subscription_id": sub,
            "user_id": 1,
            "charge_id": f"ch_new_{offset}",
            "amount": amount,
            "discount_amount": None,
            "currency": "usd",
            "status": status,
            "paid_at": paid,
            "created_at": paid,
            "updated_at": paid,
        }
        rows["payments"].append(payment)
        changed.append(payment)
    duplicate = template | dict(rows["payments"][-1], id=next_id + 3)
    rows["payments"].append(duplicate)
    changed.append(duplicate)

    for row in changed:
        row["_airbyte_raw_id"] = str(uuid.uuid4())
        row["_airbyte_extracted_at"] = synced
        row["_airbyte_meta"] = json.dumps({"changes": [], "sync_id": 2})
        row["_airbyte_generation_id"] = 1
    return Fixture(now=fixture.now, rows=rows)
