"""One generator cycle: new rows, updates, soft deletes and late rows, written in one transaction."""

# ruff: noqa: UP031  -- %-formatting is measurably cheaper than format specs in the row loops.

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from source_generator import dirt, domain
from source_generator.billing import (
    ACCOUNT_COLUMNS,
    ACCOUNT_SELECT,
    ACCOUNT_TYPES,
    LEDGER_SCHEMA,
    REFUND_WINDOW,
    RETRY_DAYS,
    Account,
    anniversary,
    ledger_row,
    period_at,
)
from source_generator.config import GeneratorConfig
from source_generator.migrate import ADVISORY_LOCK_KEY
from source_generator.schema import SCHEMA, TABLES
from source_generator.writer import copy_binary, copy_rows

Row = tuple[Any, ...]
RowsWritten = Callable[[str, list[Row]], None]
GENERATED_TABLES = ("users", "banks", "credit_cards", "subscriptions", "payments")
_DOB_FIRST = date(1950, 1, 1).toordinal()
_DOB_SPAN = date(2006, 12, 31).toordinal() - _DOB_FIRST
_DOB_ISO = tuple(date.fromordinal(_DOB_FIRST + k).isoformat() for k in range(_DOB_SPAN))
_CLOCK_STEP = timedelta(milliseconds=1)
_FIRST_RETRY = timedelta(days=RETRY_DAYS[0])
# Hot loops use %-formatting and lookup tables: both are cheaper than f-string format specs.
_THREE_DIGITS = tuple(f"{i:03d}" for i in range(1000))
_PHONE_ENDS = tuple(f"-{i:04d}" for i in range(10000))
_EXPIRIES = tuple("%02d/%d" % (1 + e % 12, 26 + e // 12) for e in range(72))
_UUID4 = "%08x-%04x-4%03x-%x%03x-%012x"  # version 4, variant 10xx
# Columns of each table that D1 applies to (data contract section 2).
_CATEGORICAL_COLUMNS = {
    "users": 1,
    "banks": 1,
    "credit_cards": 1,
    "subscriptions": 3,
    "payments": 2,
}


@dataclass
class CycleSummary:
    """What one cycle wrote: counts per table, per change kind and per dirt kind."""

    clock: datetime
    inserted: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    dirt: Counter[str] = field(default_factory=Counter)
    # How many values could have received each dirt kind: the denominators of the dirt rates.
    exposed: Counter[str] = field(default_factory=Counter)
    late_rows: int = 0

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted.values())

    @property
    def rows_updated(self) -> int:
        return sum(self.updated.values())


@dataclass(frozen=True)
class _State:
    max_ids: dict[str, int]
    latest_change: datetime | None
    prices: dict[str, tuple[int, int]]  # canonical plan name -> (monthly, annual) in cents
    plan_ladder: tuple[str, ...]  # canonical plan names, cheapest first
    last_clock: datetime | None  # the clock of the previous cycle


def cycle_seed(seed: int, clock: datetime) -> str:
    """The seed of one cycle: the run's seed and the cycle's clock, so a rerun reproduces it."""
    return f"{seed}|{clock.astimezone(UTC).isoformat()}"


def generate_cycle(
    conn: psycopg.Connection[Any],
    config: GeneratorConfig | None = None,
    clock: datetime | None = None,
    on_rows: RowsWritten | None = None,
) -> CycleSummary:
    """Run one cycle in one transaction; on any error nothing of it is kept.

    `clock` is the cycle's commit clock (default: now). It never goes backwards: a clock at or
    before the newest `updated_at` in the source moves to just after it, so the sync cursor
    always sees the cycle's rows. `on_rows(table, rows)` is called after each table's COPY
    (progress bars, the benchmark's baseline); the rows are committed only when the call returns.
    """
    config = config or GeneratorConfig()
    requested = (clock or datetime.now(UTC)).astimezone(UTC)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        state = _read_state(conn)
        effective = requested
        if state.latest_change is not None and effective <= state.latest_change:
            effective = state.latest_change + _CLOCK_STEP
        cycle = _Cycle(conn, config, state, effective, on_rows)
        cycle.run()
    return cycle.summary


def _read_state(conn: psycopg.Connection[Any]) -> _State:
    max_ids: dict[str, int] = {}
    latest: datetime | None = None
    for table in GENERATED_TABLES:
        row = conn.execute(
            f"select coalesce(max(id), 0), max(updated_at) from {SCHEMA}.{table}"
        ).fetchone()
        assert row is not None
        max_ids[table] = int(row[0])
        if row[1] is not None and (latest is None or row[1] > latest):
            latest = row[1]
    plans = conn.execute(
        f"select lower(trim(name)), monthly_price, annual_price from {SCHEMA}.plans "
        "order by monthly_price, id"
    ).fetchall()
    if not plans:
        raise RuntimeError(
            f"The source has no plans in {SCHEMA}.plans: run the migrations first "
            "(`mdp generate` does so before its first cycle)."
        )
    prices = {name: (int(m * 100), int(a * 100)) for name, m, a in plans}
    row = conn.execute(f"select max(last_clock) from {LEDGER_SCHEMA}.cycles").fetchone()
    last_clock = row[0] if row else None
    return _State(max_ids, latest, prices, tuple(name for name, _, _ in plans), last_clock)


class _Cycle:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        config: GeneratorConfig,
        state: _State,
        clock: datetime,
        on_rows: RowsWritten | None = None,
    ) -> None:
        self.conn = conn
        self.on_rows = on_rows
        self.config = config
        self.rates = config.dirt
        self.state = state
        self.clock = clock
        self.rng = random.Random(cycle_seed(config.seed, clock))
        self.summary = CycleSummary(clock=clock)
        self.next_id = {t: state.max_ids[t] + 1 for t in GENERATED_TABLES}
        self.late_seconds = config.changes.late_max_hours * 3600.0
        self.late_rate = config.changes.late_rows
        self.d1_rate = config.dirt.categorical_case
        self.rnd = self.rng.random
        # Billing: payments are collected while the cycle runs and written in one COPY at the end.
        self.payments: list[Row] = []
        self.new_accounts: list[tuple[Account, int, str]] = []  # account, user id, plan
        self.changed_accounts: dict[int, Account] = {}
        self.refunds: list[tuple[int, datetime]] = []
        self.new_idle: list[tuple[int, str]] = []
        self.window_seconds = 0.0
        rates = config.dirt
        self.p_unparseable = rates.amount_unparseable
        self.p_negative = self.p_unparseable + rates.amount_negative
        self.p_duplicate = rates.duplicate_payment
        self.p_orphan = self.p_duplicate + rates.orphan_payment
        self.amount_format = rates.amount_format
        self.discount_null = rates.discount_null
        self.refund = config.billing.refund
        # Amounts and discounts as text, by cents: a few hundred values, formatted once.
        self.plain = {c: dirt.plain_amount(c) for prices in state.prices.values() for c in prices}
        self.late_span = self.late_seconds - 1.0
        # The first anniversary of a new subscription, by (started_at, annual): most new rows of
        # a cycle start at its clock, so most share one.
        self.first_anniversary: dict[tuple[datetime, bool], datetime] = {}

    # -- shared pieces -------------------------------------------------------------------------

    def _ids(self, table: str, count: int) -> range:
        first = self.next_id[table]
        self.next_id[table] = first + count
        return range(first, first + count)

    def _cat(self, value: str) -> str:
        self.summary.exposed["D1"] += 1
        return self._dirty(value) if self.rnd() < self.d1_rate else value

    def _dirty(self, value: str) -> str:
        self.summary.dirt["D1"] += 1
        return dirt.categorical(self.rng, value)

    def _email(self, first: str, last: str, number: int) -> str:
        rnd = self.rng.random
        email = f"{first}.{last}{number}@{domain.EMAIL_DOMAINS[int(rnd() * 5)]}".lower()
        self.summary.exposed["D9"] += 1
        self.summary.exposed["D10"] += 1
        return self._dirty_email(rnd(), email)

    def _dirty_email(self, r: float, email: str) -> str:
        """D10 when `r` falls below its rate, else D9 when below both, else the clean email."""
        if r < self.rates.email_invalid:
            self.summary.dirt["D10"] += 1
            return dirt.invalid_email(self.rng, email)
        if r < self.rates.email_invalid + self.rates.email_case:
            self.summary.dirt["D9"] += 1
            return dirt.dirty_email(self.rng, email)
        return email

    def _sample_existing(self, table: str, count: int) -> list[int]:
        population = self.state.max_ids[table]
        count = min(count, population)
        if count <= 0:
            return []
        return [i + 1 for i in self.rng.sample(range(population), count)]

    def _count(self, share: float) -> int:
        return round(self.config.rows_per_cycle * share)

    # -- the cycle -----------------------------------------------------------------------------

    def run(self) -> None:
        counts = self.config.mix.split(self.config.rows_per_cycle)
        last = self.state.last_clock
        hours = (
            (self.clock - last).total_seconds() / 3600.0
            if last is not None and last < self.clock
            else self.config.changes.first_cycle_hours
        )
        self.window_seconds = hours * 3600.0
        # Billing first: an attempt due inside this cycle's window sees the statuses as they
        # were before the cycle's own changes, which are stamped with its closing clock.
        self._apply_refunds()
        self._bill_due()
        # Updates pick rows that existed before this cycle, so they run before the inserts.
        self._update_subscriptions(self._subscription_changes(hours))
        self._change_emails(self._count(self.config.changes.email_changes))
        self._soft_delete_users(self._count(self.config.changes.soft_deletes))

        # Rows are built while COPY streams them, so the server indexes one batch while the
        # next is generated.
        self._write("users", self._users(counts["users"]))
        user_population = self.next_id["users"] - 1
        self._write("banks", self._banks(counts["banks"], user_population))
        self._write("credit_cards", self._credit_cards(counts["credit_cards"], user_population))
        self._write("subscriptions", self._subscriptions(counts["subscriptions"], user_population))
        # New subscriptions pay their first period at started_at.
        self._write("payments", self._payment_rows())
        self._idle_new()
        self._save_ledger()

    def _subscription_changes(self, hours: float) -> int:
        """Changes in proportion to the subscriptions and the time the cycle covers."""
        expected = self.state.max_ids["subscriptions"] * self.config.changes.subscription_changes
        expected *= hours / 24.0
        whole = int(expected)
        return whole + (self.rnd() < expected - whole)

    def _write(self, table: str, built: Iterator[Row]) -> list[Row]:
        rows: list[Row] = []
        copy_rows(self.conn, table, built, keep=rows)
        self.summary.inserted[table] += len(rows)
        exposed = self.summary.exposed
        exposed["D1"] += len(rows) * _CATEGORICAL_COLUMNS[table]
        if table == "users":
            exposed["D11"] += len(rows)
        if table == "payments":
            for code in ("D4", "D5", "D6", "D7", "D8", "D12"):
                exposed[code] += len(rows)
        if self.on_rows is not None:
            self.on_rows(table, rows)
        return rows

    # -- inserts -------------------------------------------------------------------------------

    def _late(self) -> datetime:
        self.summary.late_rows += 1
        # rng.uniform(1.0, late_seconds), spelled out: the same draw without its call.
        return self.clock - timedelta(seconds=1.0 + self.late_span * self.rnd())

    def _users(self, count: int) -> Iterator[Row]:
        rng = self.rng
        rnd = rng.random
        getrandbits = rng.getrandbits
        d1, late, clock = self.d1_rate, self.late_rate, self.clock
        non_iso, unparseable = self.rates.dob_non_iso, self.rates.dob_unparseable
        email_dirt = self.rates.email_invalid + self.rates.email_case
        first_names, n_first = domain.FIRST_NAMES, len(domain.FIRST_NAMES)
        last_names, n_last = domain.LAST_NAMES, len(domain.LAST_NAMES)
        first_lower, last_lower = domain.FIRST_NAMES_LOWER, domain.LAST_NAMES_LOWER
        mail_domains, n_domains = domain.EMAIL_DOMAINS, len(domain.EMAIL_DOMAINS)
        countries, n_countries = domain.COUNTRIES, len(domain.COUNTRIES)
        three, phone_ends = _THREE_DIGITS, _PHONE_ENDS
        exposed = self.summary.exposed
        for code in ("D9", "D10"):
            exposed[code] += count
        for user_id in self._ids("users", count):
            fi = int(rnd() * n_first)
            li = int(rnd() * n_last)
            email = f"{first_lower[fi]}.{last_lower[li]}{user_id}@{mail_domains[int(rnd() * n_domains)]}"
            r = rnd()
            if r < email_dirt:
                email = self._dirty_email(r, email)
            day = int(rnd() * _DOB_SPAN)
            r = rnd()
            if r >= non_iso:
                dob = _DOB_ISO[day]
            else:
                dob = dirt.non_iso_ordinal(rng, _DOB_FIRST + day, r < unparseable)
                self.summary.dirt["D11"] += 1
            country = countries[int(rnd() * n_countries)]
            yield (
                user_id,
                _UUID4
                % (
                    getrandbits(32),
                    getrandbits(16),
                    getrandbits(12),
                    8 + getrandbits(2),
                    getrandbits(12),
                    getrandbits(48),
                ),
                first_names[fi],
                last_names[li],
                email,
                "+1-555-" + three[int(rnd() * 1000)] + phone_ends[int(rnd() * 10000)],
                dob,
                country if rnd() >= d1 else self._dirty(country),
                "%016x" % getrandbits(64),
                f"{three[int(rnd() * 1000)]}-{three[int(rnd() * 1000)]}-{three[int(rnd() * 1000)]}",
                None,
                clock if rnd() >= late else self._late(),
                clock,
            )

    def _banks(self, count: int, users: int) -> Iterator[Row]:
        rnd = self.rng.random
        d1, late, clock = self.d1_rate, self.late_rate, self.clock
        banks, swift, n_banks = domain.BANK_NAMES, domain.SWIFT_CODES, len(domain.BANK_NAMES)
        for bank_id in self._ids("banks", count):
            k = int(rnd() * n_banks)
            bank = banks[k]
            account = "%010d" % int(rnd() * 10**10)
            yield (
                bank_id,
                int(rnd() * users) + 1,
                bank if rnd() >= d1 else self._dirty(bank),
                account,
                "DE%010d%s" % (int(rnd() * 10**10), account),
                "%09d" % int(rnd() * 10**9),
                swift[k],
                clock if rnd() >= late else self._late(),
                clock,
            )

    def _credit_cards(self, count: int, users: int) -> Iterator[Row]:
        rnd = self.rng.random
        d1, late, clock = self.d1_rate, self.late_rate, self.clock
        types, n_types = domain.CARD_TYPES, len(domain.CARD_TYPES)
        for card_id in self._ids("credit_cards", count):
            card_type = types[int(rnd() * n_types)]
            expiry = _EXPIRIES[int(rnd() * 72)]
            yield (
                card_id,
                int(rnd() * users) + 1,
                "4%015d" % int(rnd() * 10**15),
                card_type if rnd() >= d1 else self._dirty(card_type),
                expiry,
                clock if rnd() >= late else self._late(),
                clock,
            )

    def _subscriptions(self, count: int, users: int) -> Iterator[Row]:
        rnd = self.rnd
        d1, late, clock = self.d1_rate, self.late_rate, self.clock
        ladder, n_plans = self.state.plan_ladder, len(self.state.plan_ladder)
        methods, n_methods = domain.PAYMENT_METHODS, len(domain.PAYMENT_METHODS)
        billing = self.config.billing
        annual_share, discount_share = billing.annual_share, billing.discount_share
        max_pct = round(billing.max_discount * 100)
        accounts = self.new_accounts
        spread = self.window_seconds if self.config.spread_starts else 0.0
        for sub_id in self._ids("subscriptions", count):
            if spread:
                created = clock - timedelta(seconds=rnd() * spread)
            else:
                created = clock if rnd() >= late else self._late()
            plan = ladder[int(rnd() * n_plans)]
            annual = rnd() < annual_share
            period = "annual" if annual else "monthly"
            user_id = int(rnd() * users) + 1
            discount_bp = 0
            if max_pct and rnd() < discount_share:
                discount_bp = (1 + int(rnd() * max_pct)) * 100
            # Billed at started_at, the instant it starts (section 1a).
            accounts.append(
                (Account(sub_id, created, annual, discount_bp, 0, 0, created, -1), user_id, plan)
            )
            yield (
                sub_id,
                user_id,
                plan if rnd() >= d1 else self._dirty(plan),
                "active" if rnd() >= d1 else self._dirty("active"),
                period if rnd() >= d1 else self._dirty(period),
                methods[int(rnd() * n_methods)],
                created,
                None,
                created,
                clock,
            )

    # -- billing (section 1a) ------------------------------------------------------------------

    def _plain(self, cents: int) -> str:
        """`dirt.plain_amount(cents)`, formatted once per value: amounts and discounts repeat."""
        text = self.plain.get(cents)
        if text is None:
            text = self.plain[cents] = dirt.plain_amount(cents)
        return text

    def _price(self, plan: str, annual: bool) -> int | None:
        prices = self.state.prices.get(plan)
        if prices is None:
            return None
        return prices[1] if annual else prices[0]

    def _charge(
        self,
        account: Account,
        user_id: int,
        cents: int,
        succeeded: bool,
        paid_at: datetime,
    ) -> None:
        """Write one attempt as one payment, with the dirt of section 2 on top."""
        rng = self.rng
        rnd = self.rnd
        counts = self.summary.dirt
        next_id = self.next_id
        payment_id = next_id["payments"]
        next_id["payments"] = payment_id + 1
        r = rnd()
        if r < self.p_unparseable:
            amount = dirt.UNPARSEABLE_AMOUNTS[int(rnd() * 3)]
            counts["D5"] += 1
        elif r < self.p_negative:
            amount = "-" + self._plain(cents)
            counts["D6"] += 1
        elif rnd() < self.amount_format:
            amount = dirt.formatted_amount(rng, cents)
            counts["D4"] += 1
        else:
            amount = self._plain(cents)
        if rnd() < self.discount_null:
            discount: str | None = None
            counts["D12"] += 1
        else:
            # Half up, in whole cents: the discount the invoice shows.
            discount = self._plain((cents * account.discount_bp + 5000) // 10000)
        status = "succeeded" if succeeded else "failed"
        currency = domain.PAYMENT_CURRENCY
        d1 = self.d1_rate
        row: Row = (
            payment_id,
            account.subscription_id,
            user_id,
            "ch_%024x" % rng.getrandbits(96),
            amount,
            discount,
            currency if rnd() >= d1 else self._dirty(currency),
            status if rnd() >= d1 else self._dirty(status),
            paid_at,
            paid_at,
            self.clock,
        )
        self.payments.append(row)
        if succeeded and rnd() < self.refund:
            self.refunds.append((payment_id, paid_at + rng.random() * REFUND_WINDOW))
        r = rnd()
        if r < self.p_duplicate:
            # D7: the same charge written again under a new id.
            self.payments.append((self._ids("payments", 1)[0], *row[1:]))
            counts["D7"] += 1
        elif r < self.p_orphan:
            # D8: a payment for a subscription that does not exist.
            orphan = domain.ORPHAN_SUBSCRIPTION_BASE + rng.getrandbits(40)
            self.payments.append(
                (
                    self._ids("payments", 1)[0],
                    orphan,
                    *row[2:3],
                    "ch_%024x" % rng.getrandbits(96),
                    *row[4:],
                )
            )
            counts["D8"] += 1

    def _bill(self, account: Account, user_id: int, plan: str, active: bool) -> bool:
        """Every attempt of `account` due by the clock; True when dunning made it idle."""
        billing = self.config.billing
        went_idle = False
        while account.due_at <= self.clock:
            cents = account.amount_cents
            if account.attempt == 0 or cents is None:
                # The anniversary invoices the current plan; its retries charge that invoice.
                cents = self._price(plan, account.annual)
            if not active or cents is None:
                # Not billed while not active: the period is skipped, dunning stops.
                account.next_anniversary()
                continue
            fails = billing.failure if account.attempt == 0 else billing.retry_failure_rate
            succeeded = self.rnd() >= fails
            self._charge(account, user_id, cents, succeeded, account.due_at)
            if succeeded:
                account.paid_period = account.period
                account.next_anniversary()
            elif account.retry():
                account.amount_cents = cents
            else:
                # The last retry failed: involuntary churn.
                went_idle = True
                active = False
                account.next_anniversary()
        return went_idle

    def _bill_due(self) -> None:
        """Attempts of existing subscriptions whose due instant falls in this cycle's window."""
        rows = self.conn.execute(
            f"select {ACCOUNT_SELECT}, s.user_id, "
            "lower(trim(s.plan)), s.status, u.id is not null and u.deleted_at is null "
            f"from {LEDGER_SCHEMA}.billing b "
            f"join {SCHEMA}.subscriptions s on s.id = b.subscription_id "
            f"left join {SCHEMA}.users u on u.id = s.user_id "
            "where b.due_at <= %s order by b.due_at, b.subscription_id",
            (self.clock,),
        ).fetchall()
        idle: list[tuple[int, str]] = []
        for *fields_, user_id, plan, status, user_alive in rows:
            account = Account(*fields_)
            active = user_alive and _status(status) == "active"
            if self._bill(account, user_id, plan or "", active):
                idle.append((account.subscription_id, self._cat("idle")))
            self.changed_accounts[account.subscription_id] = account
        if idle:
            self._bulk_update("subscriptions", {"status": "text"}, idle)
            self.summary.updated["subscriptions.dunning_idle"] += len(idle)

    def _payment_rows(self) -> Iterator[Row]:
        """The cycle's payments for COPY: the attempts already made, then the first payment of
        each new subscription, built while COPY streams so the server works in parallel."""
        pending = self.payments
        yield from pending
        sent = len(pending)
        rnd, failure = self.rnd, self.config.billing.failure
        prices = self.state.prices
        charge = self._charge
        first_anniversary = self.first_anniversary
        recent = self.clock - _FIRST_RETRY
        for account, user_id, plan in self.new_accounts:
            started = account.due_at
            if started > recent:
                # The common case, inlined: one attempt at started_at, nothing else due yet.
                annual = account.annual
                cents = prices[plan][1 if annual else 0]
                succeeded = rnd() >= failure
                charge(account, user_id, cents, succeeded, started)
                if succeeded:
                    # Account.next_anniversary from period 0, its anniversary computed once.
                    account.paid_period = 0
                    account.period = 1
                    due = first_anniversary.get((started, annual))
                    if due is None:
                        due = first_anniversary[started, annual] = anniversary(started, 1, annual)
                    account.due_at = due
                else:
                    account.retry()
                    account.amount_cents = cents
            elif self._bill(account, user_id, plan, True):
                # Only a late row with a failure rate near 1: the new row already says active.
                self.new_idle.append((account.subscription_id, self._cat("idle")))
            while sent < len(pending):
                yield pending[sent]
                sent += 1

    def _idle_new(self) -> None:
        if self.new_idle:
            self._bulk_update("subscriptions", {"status": "text"}, self.new_idle)
            self.summary.updated["subscriptions.dunning_idle"] += len(self.new_idle)

    def _reactivation_charge(self, account: Account, user_id: int, plan: str) -> None:
        """A reactivated subscription pays for the period it comes back in, unless already paid."""
        current = period_at(account.started_at, self.clock, account.annual)
        cents = self._price(plan, account.annual)
        if account.paid_period < current and cents is not None:
            account.period = current
            self._charge(account, user_id, cents, True, self.clock)
            account.paid_period = current
        account.period = current
        account.next_anniversary()
        self.changed_accounts[account.subscription_id] = account

    def _apply_refunds(self) -> None:
        rows = self.conn.execute(
            f"delete from {LEDGER_SCHEMA}.refunds where due_at <= %s returning payment_id",
            (self.clock,),
        ).fetchall()
        refunds = [(pid, self._cat("refunded")) for (pid,) in sorted(rows)]
        if refunds:
            self._bulk_update("payments", {"status": "text"}, refunds)
        self.summary.updated["payments.refund"] += len(refunds)

    def _save_ledger(self) -> None:
        conn, schema = self.conn, LEDGER_SCHEMA
        if self.new_accounts:
            copy_binary(
                conn,
                schema,
                "billing",
                ACCOUNT_COLUMNS,
                ACCOUNT_TYPES,
                (ledger_row(a) for a, _, _ in self.new_accounts),
            )
        changed = [a for a in self.changed_accounts.values()]
        if changed:
            conn.execute(
                f"update {schema}.billing b set period = u.period, attempt = u.attempt, "
                "due_at = u.due_at, paid_period = u.paid_period, amount_cents = u.amount_cents "
                "from unnest(%s::bigint[], %s::integer[], %s::integer[], "
                "%s::timestamptz[], %s::integer[], %s::bigint[]) "
                "as u(id, period, attempt, due_at, paid_period, amount_cents) "
                "where b.subscription_id = u.id",
                (
                    [a.subscription_id for a in changed],
                    [a.period for a in changed],
                    [a.attempt for a in changed],
                    [a.due_at for a in changed],
                    [a.paid_period for a in changed],
                    [a.amount_cents for a in changed],
                ),
            )
        if self.refunds:
            copy_binary(
                conn,
                schema,
                "refunds",
                ("payment_id", "due_at"),
                ("int8", "timestamptz"),
                self.refunds,
            )
        conn.execute(
            f"insert into {schema}.cycles (id, last_clock) values (1, %s) "
            "on conflict (id) do update set last_clock = excluded.last_clock",
            (self.clock,),
        )

    # -- updates -------------------------------------------------------------------------------

    def _update_subscriptions(self, count: int) -> None:
        ids = self._sample_existing("subscriptions", count)
        if not ids:
            return
        current = self.conn.execute(
            f"select s.id, lower(trim(s.plan)), lower(trim(s.status)), s.user_id, "
            f"{ACCOUNT_SELECT} "
            f"from {SCHEMA}.subscriptions s "
            f"left join {LEDGER_SCHEMA}.billing b on b.subscription_id = s.id "
            "where s.id = any(%s) order by s.id",
            (ids,),
        ).fetchall()
        rnd = self.rnd
        ladder = self.state.plan_ladder
        reactivation = self.config.changes.reactivation
        changes: list[tuple[int, str, str, datetime | None]] = []
        for sub_id, plan, status, user_id, *ledger in current:
            plan = plan if plan in ladder else ladder[0]
            rank = ladder.index(plan)
            status = _status(status)
            new_status, cancelled_at = status, None
            if status != "active":
                if rnd() >= reactivation:
                    continue
                action, new_status = "reactivate", "active"
                if ledger[0] is not None:
                    self._reactivation_charge(
                        self.changed_accounts.get(sub_id) or Account(*ledger), user_id, plan
                    )
            else:
                action = ("cancel", "upgrade", "downgrade", "idle")[int(rnd() * 4)]
                if action == "upgrade" and rank == len(ladder) - 1:
                    action = "downgrade"
                if action == "downgrade" and rank == 0:
                    action = "upgrade"
                if action == "cancel":
                    new_status, cancelled_at = "cancelled", self.clock
                elif action == "idle":
                    new_status = "idle"
                elif action == "upgrade":
                    plan = ladder[rank + 1]
                else:
                    plan = ladder[rank - 1]
            changes.append((sub_id, self._cat(plan), self._cat(new_status), cancelled_at))
            self.summary.updated[f"subscriptions.{action}"] += 1
        if changes:
            self._bulk_update(
                "subscriptions",
                {"plan": "text", "status": "text", "cancelled_at": "timestamptz"},
                changes,
            )

    def _bulk_update(self, table: str, columns: dict[str, str], rows: list[Any]) -> None:
        """One UPDATE for all `rows` (id first, then `columns` in order), stamped with the clock."""
        names = list(columns)
        assignments = ", ".join(f"{c} = u.{c}" for c in names)
        arrays = ", ".join(["%s::bigint[]", *(f"%s::{columns[c]}[]" for c in names)])
        ids, *values = map(list, zip(*rows, strict=True))
        # `t.id = any(...)` lets the planner reach the rows by primary key; a join on the
        # unnested arrays alone makes it scan the whole table, which grows every cycle.
        self.conn.execute(
            f"update {SCHEMA}.{table} t set {assignments}, updated_at = %s "
            f"from unnest({arrays}) as u(id, {', '.join(names)}) "
            "where t.id = u.id and t.id = any(%s::bigint[])",
            (self.clock, ids, *values, ids),
        )

    def _alive_users(self, count: int) -> list[tuple[int, str, str]]:
        ids = self._sample_existing("users", count)
        if not ids:
            return []
        return [
            (int(i), str(f), str(last))
            for i, f, last in self.conn.execute(
                f"select id, first_name, last_name from {SCHEMA}.users "
                "where id = any(%s) and deleted_at is null order by id",
                (ids,),
            ).fetchall()
        ]

    def _change_emails(self, count: int) -> None:
        users = self._alive_users(count)
        changes = [
            (uid, self._email(first, last, uid * 10 + _below(self.rng, 10)))
            for uid, first, last in users
        ]
        if changes:
            self._bulk_update("users", {"email": "text"}, changes)
        self.summary.updated["users.email"] += len(changes)

    def _soft_delete_users(self, count: int) -> None:
        ids = [uid for uid, _, _ in self._alive_users(count)]
        if ids:
            self.conn.execute(
                f"update {SCHEMA}.users set deleted_at = %s, updated_at = %s where id = any(%s)",
                (self.clock, self.clock, ids),
            )
        self.summary.updated["users.soft_delete"] += len(ids)


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n): cheaper than randrange and as reproducible."""
    return int(rng.random() * n)


def _canonical(value: str) -> str:
    return value.strip().lower()


def _billing(value: str | None) -> str:
    v = (value or "").strip().lower()
    return "annual" if v in ("annual", "yearly") else "monthly"


def _status(value: str | None) -> str:
    v = (value or "").strip().lower()
    return "cancelled" if v in ("canceled", "cancelled") else v


assert set(GENERATED_TABLES) <= set(TABLES)
