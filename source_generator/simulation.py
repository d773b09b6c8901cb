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
from source_generator.config import GeneratorConfig
from source_generator.migrate import ADVISORY_LOCK_KEY
from source_generator.schema import SCHEMA, TABLES
from source_generator.writer import copy_rows

Row = tuple[Any, ...]
RowsWritten = Callable[[str, list[Row]], None]
GENERATED_TABLES = ("users", "banks", "credit_cards", "subscriptions", "payments")
_DOB_FIRST = date(1950, 1, 1).toordinal()
_DOB_SPAN = date(2006, 12, 31).toordinal() - _DOB_FIRST
_DOB_ISO = tuple(date.fromordinal(_DOB_FIRST + k).isoformat() for k in range(_DOB_SPAN))
_CLOCK_STEP = timedelta(milliseconds=1)
# Hot loops use %-formatting and lookup tables: both are cheaper than f-string format specs.
_THREE_DIGITS = tuple(f"{i:03d}" for i in range(1000))
_UUID4 = "%08x-%04x-4%03x-%x%03x-%012x"  # version 4, variant 10xx
RENEWALS_PER_CYCLE = 2000
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
    return _State(max_ids, latest, prices, tuple(name for name, _, _ in plans))


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
        # Updates pick rows that existed before this cycle, so they run before the inserts.
        self._update_subscriptions(self._count(self.config.changes.subscription_changes))
        self._refund_payments(self._count(self.config.changes.refunds))
        self._change_emails(self._count(self.config.changes.email_changes))
        self._soft_delete_users(self._count(self.config.changes.soft_deletes))

        # Rows are built while COPY streams them, so the server indexes one batch while the
        # next is generated.
        self._write("users", self._users(counts["users"]))
        user_population = self.next_id["users"] - 1
        self._write("banks", self._banks(counts["banks"], user_population))
        self._write("credit_cards", self._credit_cards(counts["credit_cards"], user_population))
        subscriptions = self._write(
            "subscriptions", self._subscriptions(counts["subscriptions"], user_population)
        )
        if counts["payments"] > 0:
            payable = self._payable_subscriptions(subscriptions)
            self._write("payments", self._payments(counts["payments"], payable))

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
        return self.clock - timedelta(seconds=self.rng.uniform(1.0, self.late_seconds))

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
        three = _THREE_DIGITS
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
                dob = dirt.non_iso_date(rng, date.fromordinal(_DOB_FIRST + day), r < unparseable)
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
                "+1-555-%03d-%04d" % (int(rnd() * 1000), int(rnd() * 10000)),
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
            expiry = int(rnd() * 72)
            yield (
                card_id,
                int(rnd() * users) + 1,
                "4%015d" % int(rnd() * 10**15),
                card_type if rnd() >= d1 else self._dirty(card_type),
                "%02d/%d" % (1 + expiry % 12, 26 + expiry // 12),
                clock if rnd() >= late else self._late(),
                clock,
            )

    def _subscriptions(self, count: int, users: int) -> Iterator[Row]:
        rnd = self.rng.random
        d1, late, clock = self.d1_rate, self.late_rate, self.clock
        ladder, n_plans = self.state.plan_ladder, len(self.state.plan_ladder)
        methods, n_methods = domain.PAYMENT_METHODS, len(domain.PAYMENT_METHODS)
        for sub_id in self._ids("subscriptions", count):
            created = clock if rnd() >= late else self._late()
            plan = ladder[int(rnd() * n_plans)]
            billing = "annual" if rnd() < 0.3 else "monthly"
            yield (
                sub_id,
                int(rnd() * users) + 1,
                plan if rnd() >= d1 else self._dirty(plan),
                "active" if rnd() >= d1 else self._dirty("active"),
                billing if rnd() >= d1 else self._dirty(billing),
                methods[int(rnd() * n_methods)],
                created,
                None,
                created,
                clock,
            )

    def _payments(self, count: int, payable: list[tuple[int, int, int]]) -> Iterator[Row]:
        rng = self.rng
        rnd = rng.random
        d1 = self.d1_rate
        getrandbits = rng.getrandbits
        rates = self.rates
        if not payable:
            return
        n_payable = len(payable)
        users = self.next_id["users"] - 1
        p_unparseable = rates.amount_unparseable
        p_negative = p_unparseable + rates.amount_negative
        p_orphan = p_negative + rates.orphan_payment
        p_duplicate = p_orphan + rates.duplicate_payment
        p_format = rates.amount_format
        p_discount_null = rates.discount_null
        p_discount = p_discount_null + 0.2
        plain = {c: dirt.plain_amount(c) for _, _, c in payable}
        tenth = {c: dirt.plain_amount(c // 10) for c in plain}
        dirty = self._dirty
        late = self.late_rate
        clock = self.clock
        currency = domain.PAYMENT_CURRENCY
        counts = Counter[str]()
        clean: list[Row] = []
        for payment_id in self._ids("payments", count):
            r = rnd()
            if p_orphan <= r < p_duplicate and clean:
                # D7: the same charge written again under a new id.
                original = clean[int(rnd() * len(clean))]
                yield (payment_id, *original[1:])
                counts["D7"] += 1
                if original[-2] != clock:
                    self.summary.late_rows += 1
                continue
            sub_id, user_id, cents = payable[int(rnd() * n_payable)]
            if r < p_unparseable:
                amount = dirt.UNPARSEABLE_AMOUNTS[int(rnd() * 3)]
                counts["D5"] += 1
            elif r < p_negative:
                amount = "-" + plain[cents]
                counts["D6"] += 1
            elif rnd() < p_format:
                amount = dirt.formatted_amount(rng, cents)
                counts["D4"] += 1
            else:
                amount = plain[cents]
            if p_negative <= r < p_orphan:
                sub_id = domain.ORPHAN_SUBSCRIPTION_BASE + getrandbits(40)
                user_id = int(rnd() * users) + 1
                counts["D8"] += 1
            d = rnd()
            if d < p_discount_null:
                discount: str | None = None
                counts["D12"] += 1
            elif d < p_discount:
                discount = tenth[cents]
            else:
                discount = "0.00"
            status = "failed" if rnd() < 0.1 else "succeeded"
            created = clock if rnd() >= late else self._late()
            row: Row = (
                payment_id,
                sub_id,
                user_id,
                "ch_%024x" % getrandbits(96),
                amount,
                discount,
                currency if rnd() >= d1 else dirty(currency),
                status if rnd() >= d1 else dirty(status),
                created,
                created,
                clock,
            )
            yield row
            if r >= p_duplicate:
                clean.append(row)
        self.summary.dirt.update(counts)

    def _payable_subscriptions(self, new_subscriptions: list[Row]) -> list[tuple[int, int, int]]:
        """(id, user_id, price in cents) of the subscriptions that pay this cycle.

        New subscriptions pay their first invoice; a bounded sample of older ones renews,
        so a cycle's cost does not grow with the size of the source.
        """
        prices = self.state.prices
        candidates = [(row[0], row[1], row[2], row[4]) for row in new_subscriptions]
        existing = self._sample_existing("subscriptions", RENEWALS_PER_CYCLE)
        if existing:
            candidates.extend(
                self.conn.execute(
                    f"select id, user_id, plan, billing_period from {SCHEMA}.subscriptions "
                    "where id = any(%s) order by id",
                    (existing,),
                ).fetchall()
            )
        payable = []
        for sub_id, user_id, plan, billing in candidates:
            monthly, annual = prices.get(_canonical(plan or ""), (0, 0))
            payable.append((sub_id, user_id, annual if _billing(billing) == "annual" else monthly))
        return payable

    # -- updates -------------------------------------------------------------------------------

    def _update_subscriptions(self, count: int) -> None:
        ids = self._sample_existing("subscriptions", count)
        if not ids:
            return
        current = self.conn.execute(
            f"select id, lower(trim(plan)), lower(trim(status)) from {SCHEMA}.subscriptions "
            "where id = any(%s) order by id",
            (ids,),
        ).fetchall()
        rng = self.rng
        rnd = rng.random
        ladder = self.state.plan_ladder
        changes: list[tuple[int, str, str, datetime | None]] = []
        for sub_id, plan, status in current:
            plan = plan if plan in ladder else ladder[0]
            rank = ladder.index(plan)
            status = _status(status)
            new_status, cancelled_at = status, None
            if status in ("cancelled", "blocked") or (status == "idle" and rng.random() < 0.5):
                action, new_status = "reactivate", "active"
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
            if new_status == "cancelled" and status == "cancelled":
                continue
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

    def _refund_payments(self, count: int) -> None:
        ids = self._sample_existing("payments", count)
        if not ids:
            return
        rows = self.conn.execute(
            f"select id, lower(trim(status)) from {SCHEMA}.payments where id = any(%s) order by id",
            (ids,),
        ).fetchall()
        refunds = [(pid, self._cat("refunded")) for pid, status in rows if status == "succeeded"]
        if refunds:
            self._bulk_update("payments", {"status": "text"}, refunds)
        self.summary.updated["payments.refund"] += len(refunds)

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
