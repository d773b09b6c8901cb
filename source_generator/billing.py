"""Billing calendar of data contract section 1a: anniversaries, dunning retries, the billing ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

# The generator's own bookkeeping (what is due when, discounts, pending refunds). It lives
# beside the app's tables, in a schema the sync never reads: a billing engine's internal state.
# Its tables are UNLOGGED (no WAL: the generator's overhead stays small). A crash of the server
# empties them; `migrate` then reopens an account for every subscription (billed from its next
# anniversary, no discount) and pending refunds are dropped: the app's own tables lose nothing.
LEDGER_SCHEMA = "generator"
# A failed anniversary attempt is retried this many days after the anniversary (dunning).
RETRY_DAYS: tuple[int, ...] = (1, 3, 7)
REFUND_WINDOW = timedelta(days=30)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_DAYS[month - 1]


def anniversary(started_at: datetime, period: int, annual: bool) -> datetime:
    """`started_at` + `period` months (or years); a day the month lacks falls on its last day."""
    months = started_at.month - 1 + period * (12 if annual else 1)
    year = started_at.year + months // 12
    month = months % 12 + 1
    day = started_at.day
    if day > 28:
        day = min(day, days_in_month(year, month))
    return started_at.replace(year=year, month=month, day=day)


def period_at(started_at: datetime, instant: datetime, annual: bool) -> int:
    """The billing period that contains `instant`: k with anniversary k <= instant < k + 1."""
    months = (instant.year - started_at.year) * 12 + instant.month - started_at.month
    k = max(months // (12 if annual else 1), 0)
    while k > 0 and anniversary(started_at, k, annual) > instant:
        k -= 1
    while anniversary(started_at, k + 1, annual) <= instant:
        k += 1
    return k


@dataclass(slots=True)
class Account:
    """One subscription's row of the billing ledger: the next attempt and what is paid."""

    subscription_id: int
    started_at: datetime
    annual: bool
    discount_bp: int  # discount in basis points of the amount (0-3000)
    period: int  # the billing period the next attempt is for
    attempt: int  # 0: the anniversary charge; 1..3: the dunning retries
    due_at: datetime
    paid_period: int  # the last period with a succeeded payment (-1: none)
    # The amount of the period's invoice, set by its anniversary attempt: the dunning retries
    # charge it even after a plan change (charged from the next anniversary). None: not yet
    # invoiced, or a ledger written before the column existed; priced from the current plan.
    amount_cents: int | None = None

    def next_anniversary(self) -> None:
        """Move on to the next period's charge."""
        self.period += 1
        self.attempt = 0
        self.amount_cents = None
        self.due_at = anniversary(self.started_at, self.period, self.annual)

    def retry(self) -> bool:
        """Schedule the next dunning retry; False when the last one has failed."""
        if self.attempt >= len(RETRY_DAYS):
            return False
        self.attempt += 1
        due = anniversary(self.started_at, self.period, self.annual)
        self.due_at = due + timedelta(days=RETRY_DAYS[self.attempt - 1])
        return True


ACCOUNT_COLUMNS = (
    "subscription_id",
    "due_at",
    "discount_bp",
    "period",
    "attempt",
    "paid_period",
    "amount_cents",
)
# An Account's ledger row, in ACCOUNT_COLUMNS order; started_at and the billing period are read
# from the subscription.
ledger_row = attrgetter(*ACCOUNT_COLUMNS)
# Binary COPY types of the ledger columns: the ledger is the generator's overhead, kept cheap.
ACCOUNT_TYPES = ("int8", "timestamptz", "int4", "int4", "int4", "int4", "int8")
# What a query must select, ledger `b` joined to its subscription `s`, to build an Account.
ACCOUNT_SELECT = (
    "b.subscription_id, s.started_at, lower(trim(s.billing_period)) in ('annual', 'yearly'), "
    "b.discount_bp, b.period, b.attempt, b.due_at, b.paid_period, b.amount_cents"
)


def ledger_ddl() -> list[str]:
    """Statements that create the ledger; each is safe to run again."""
    s = LEDGER_SCHEMA
    return [
        f"create schema if not exists {s}",
        f"""create unlogged table if not exists {s}.billing (
  subscription_id bigint primary key,
  due_at timestamp with time zone not null,
  discount_bp integer not null,
  period integer not null,
  attempt integer not null,
  paid_period integer not null,
  amount_cents bigint
)""",
        # Ledgers created before the invoice amount was kept: their open invoices have none.
        f"alter table {s}.billing add column if not exists amount_cents bigint",
        f"create index if not exists billing_due_at_idx on {s}.billing (due_at)",
        f"""create unlogged table if not exists {s}.refunds (
  payment_id bigint primary key,
  due_at timestamp with time zone not null
)""",
        f"create index if not exists refunds_due_at_idx on {s}.refunds (due_at)",
        f"""create table if not exists {s}.cycles (
  id integer primary key check (id = 1),
  last_clock timestamp with time zone not null
)""",
    ]
