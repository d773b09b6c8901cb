"""The three checked marts recomputed from the source tables with the data contract's rules alone."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
PAYMENT_STATUSES = {"succeeded", "failed", "refunded"}
# numeric(12,2): ten digits before the point.
LARGEST_AMOUNT = Decimal("9999999999.99")
# ASCII digits only, and whole-string matches: `$` alone would let a trailing newline through.
_LEADING_CURRENCY = re.compile(r"(?i)^(USD)?\$?")
_DECIMAL_COMMA = re.compile(r"(-?[0-9]+),([0-9]{1,2})")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def money(value: Decimal) -> Decimal:
    # ROUND_HALF_UP on Decimal rounds half away from zero, as the contract asks.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(text: str | None) -> Decimal | None:
    """D4/D5: the amount as numeric(12,2), or None when it cannot be parsed.

    Spaces go, then a leading `USD` and a leading `$`; a comma before 1-2 final digits is the
    decimal point; what is left must be a plain decimal number that fits numeric(12,2).
    """
    if text is None:
        return None
    s = _LEADING_CURRENCY.sub("", text.replace(" ", ""), count=1)
    comma = _DECIMAL_COMMA.fullmatch(s)
    if comma:
        s = f"{comma[1]}.{comma[2]}"
    if not _PLAIN_NUMBER.fullmatch(s):
        return None
    value = money(Decimal(s))
    return value if abs(value) <= LARGEST_AMOUNT else None


def canonical(text: str | None) -> str | None:
    return None if text is None else text.strip().lower()


def subscription_status(text: str | None) -> str | None:
    s = canonical(text)
    return "cancelled" if s in ("canceled", "cancelled") else s


def billing_period(text: str | None) -> str | None:
    s = canonical(text)
    return "annual" if s in ("annual", "yearly") else s


@dataclass(frozen=True)
class ContractMarts:
    net_revenue_by_plan: dict[str, tuple[Decimal, int]]
    monthly_net_revenue_by_plan: dict[tuple[date, str], Decimal]
    current_mrr_by_plan: dict[str, tuple[Decimal, int]]


def _rows(conn: Any, query: str) -> list[tuple[Any, ...]]:
    return list(conn.execute(query).fetchall())


def compute(conn: Any) -> ContractMarts:
    """Recompute the marts from the PostgreSQL source (`app` schema) over a psycopg connection."""
    plans = {
        canonical(name): (name, Decimal(monthly), Decimal(annual))
        for name, monthly, annual in _rows(
            conn, "select name, monthly_price, annual_price from app.plans"
        )
    }
    deleted_users = {
        uid for (uid,) in _rows(conn, "select id from app.users where deleted_at is not null")
    }
    subscriptions = {
        sid: (canonical(plan), subscription_status(status), billing_period(period), user_id)
        for sid, plan, status, period, user_id in _rows(
            conn, "select id, plan, status, billing_period, user_id from app.subscriptions"
        )
    }
    payments = _rows(
        conn,
        "select id, subscription_id, charge_id, amount, discount_amount, status, paid_at "
        "from app.payments order by id",
    )
    first_id_of_charge: dict[str, int] = {}
    for pid, _, charge_id, *_rest in payments:
        first_id_of_charge.setdefault(charge_id, pid)

    revenue: dict[str, Decimal] = defaultdict(Decimal)
    succeeded: dict[str, int] = defaultdict(int)
    monthly: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for pid, sub_id, charge_id, amount_text, discount, status, paid_at in payments:
        amount = parse_amount(amount_text)
        if amount is None or amount < 0:  # D5, D6
            continue
        if first_id_of_charge[charge_id] != pid:  # D7
            continue
        if sub_id not in subscriptions:  # D8
            continue
        plan_key = subscriptions[sub_id][0]
        if plan_key not in plans:
            continue
        plan_name = plans[plan_key][0]
        is_succeeded = canonical(status) == "succeeded"
        net = (
            amount - (Decimal(discount) if discount is not None else Decimal(0))
            if is_succeeded
            else Decimal(0)
        )
        revenue[plan_name] += net
        succeeded[plan_name] += int(is_succeeded)
        monthly[(_utc_month(paid_at), plan_name)] += net

    mrr: dict[str, Decimal] = defaultdict(Decimal)
    active: dict[str, int] = defaultdict(int)
    for plan_key, status, period, user_id in subscriptions.values():
        if status != "active" or user_id in deleted_users or plan_key not in plans:
            continue
        name, monthly_price, annual_price = plans[plan_key]
        if period == "monthly":
            mrr[name] += monthly_price
        elif period == "annual":
            mrr[name] += annual_price / 12
        else:
            continue
        active[name] += 1

    names = [p[0] for p in plans.values()]
    return ContractMarts(
        net_revenue_by_plan={n: (money(revenue[n]), succeeded[n]) for n in names},
        monthly_net_revenue_by_plan={k: money(v) for k, v in monthly.items()},
        current_mrr_by_plan={n: (money(mrr[n]), active[n]) for n in names},
    )


def _utc_month(ts: datetime) -> date:
    utc = ts.astimezone(UTC)
    return date(utc.year, utc.month, 1)
