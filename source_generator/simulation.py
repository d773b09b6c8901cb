"""One generator cycle: new rows, updates, soft deletes and late rows, written in one transaction."""

from __future__ import annotations

import random
import uuid
from collections import Counter
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
GENERATED_TABLES = ("users", "banks", "credit_cards", "subscriptions", "payments")
_DOB_FIRST = date(1950, 1, 1).toordinal()
_DOB_SPAN = date(2006, 12, 31).toordinal() - _DOB_FIRST
_CLOCK_STEP = timedelta(milliseconds=1)


@dataclass
class CycleSummary:
    """What one cycle wrote: counts per table, per change kind and per dirt kind."""

    clock: datetime
    inserted: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    dirt: Counter[str] = field(default_factory=Counter)
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
) -> CycleSummary:
    """Run one cycle in one transaction; on any error nothing of it is kept.

    `clock` is the cycle's commit clock (default: now). It never goes backwards: a clock at or
    before the newest `updated_at` in the source moves to just after it, so the sync cursor
    always sees the cycle's rows.
    """
    config = config or GeneratorConfig()
    requested = (clock or datetime.now(UTC)).astimezone(UTC)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        state = _read_state(conn)
        effective = requested
        if state.latest_change is not None and effective <= state.latest_change:
            effective = state.latest_change + _CLOCK_STEP
        cycle = _Cycle(conn, config, state, effective)
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
    ) -> None:
        self.conn = conn
        self.config = config
        self.rates = config.dirt
        self.state = state
        self.clock = clock
        self.rng = random.Random(cycle_seed(config.seed, clock))
        self.summary = CycleSummary(clock=clock)
        self.next_id = {t: state.max_ids[t] + 1 for t in GENERATED_TABLES}
        self.late_seconds = config.changes.late_max_hours * 3600.0

    # -- shared pieces -------------------------------------------------------------------------

    def _ids(self, table: str, count: int) -> range:
        first = self.next_id[table]
        self.next_id[table] = first + count
        return range(first, first + count)

    def _created_at(self) -> datetime:
        if self.rng.random() < self.config.changes.late_rows:
            self.summary.late_rows += 1
            return self.clock - timedelta(seconds=self.rng.uniform(1.0, self.late_seconds))
        return self.clock

    def _cat(self, value: str) -> str:
        if self.rng.random() < self.rates.categorical_case:
            self.summary.dirt["D1"] += 1
            return dirt.categorical(self.rng, value)
        return value

    def _email(self, first: str, last: str, number: int) -> str:
        rng = self.rng
        email = f"{first}.{last}{number}@{domain.EMAIL_DOMAINS[rng.randrange(5)]}".lower()
        r = rng.random()
        if r < self.rates.email_invalid:
            self.summary.dirt["D10"] += 1
            return dirt.invalid_email(rng, email)
        if r < self.rates.email_invalid + self.rates.email_case:
            self.summary.dirt["D9"] += 1
            return dirt.dirty_email(rng, email)
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

        users = self._users(counts["users"])
        self._write("users", users)
        user_population = self.next_id["users"] - 1
        self._write("banks", self._banks(counts["banks"], user_population))
        self._write("credit_cards", self._credit_cards(counts["credit_cards"], user_population))
        subscriptions = self._subscriptions(counts["subscriptions"], user_population)
        self._write("subscriptions", subscriptions)
        self._write("payments", self._payments(counts["payments"], subscriptions))

    def _write(self, table: str, rows: list[Row]) -> None:
        if rows:
            copy_rows(self.conn, table, rows)
        self.summary.inserted[table] += len(rows)

    # -- inserts -------------------------------------------------------------------------------

    def _users(self, count: int) -> list[Row]:
        rng = self.rng
        rates = self.rates
        rows: list[Row] = []
        for user_id in self._ids("users", count):
            first = domain.FIRST_NAMES[rng.randrange(len(domain.FIRST_NAMES))]
            last = domain.LAST_NAMES[rng.randrange(len(domain.LAST_NAMES))]
            dob_day = date.fromordinal(_DOB_FIRST + rng.randrange(_DOB_SPAN))
            dob = dirt.date_of_birth(rng, dob_day, rates.dob_non_iso, rates.dob_unparseable)
            if dob != dob_day.isoformat():
                self.summary.dirt["D11"] += 1
            rows.append(
                (
                    user_id,
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    first,
                    last,
                    self._email(first, last, user_id),
                    f"+1-555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}",
                    dob,
                    self._cat(domain.COUNTRIES[rng.randrange(len(domain.COUNTRIES))]),
                    f"{rng.getrandbits(64):016x}",
                    f"{rng.randrange(1000):03d}-{rng.randrange(1000):03d}-{rng.randrange(1000):03d}",
                    None,
                    self._created_at(),
                    self.clock,
                )
            )
        return rows

    def _banks(self, count: int, users: int) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for bank_id in self._ids("banks", count):
            k = rng.randrange(len(domain.BANK_NAMES))
            account = f"{rng.randrange(10**10):010d}"
            rows.append(
                (
                    bank_id,
                    rng.randrange(users) + 1,
                    self._cat(domain.BANK_NAMES[k]),
                    account,
                    f"DE{rng.randrange(100):02d}{rng.randrange(10**8):08d}{account}",
                    f"{rng.randrange(10**9):09d}",
                    domain.SWIFT_CODES[k],
                    self._created_at(),
                    self.clock,
                )
            )
        return rows

    def _credit_cards(self, count: int, users: int) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for card_id in self._ids("credit_cards", count):
            rows.append(
                (
                    card_id,
                    rng.randrange(users) + 1,
                    f"4{rng.randrange(10**15):015d}",
                    self._cat(domain.CARD_TYPES[rng.randrange(len(domain.CARD_TYPES))]),
                    f"{rng.randrange(1, 13):02d}/{rng.randrange(26, 32)}",
                    self._created_at(),
                    self.clock,
                )
            )
        return rows

    def _subscriptions(self, count: int, users: int) -> list[Row]:
        rng = self.rng
        ladder = self.state.plan_ladder
        rows: list[Row] = []
        for sub_id in self._ids("subscriptions", count):
            created = self._created_at()
            plan = ladder[rng.randrange(len(ladder))]
            billing = "annual" if rng.random() < 0.3 else "monthly"
            rows.append(
                (
                    sub_id,
                    rng.randrange(users) + 1,
                    self._cat(plan),
                    self._cat("active"),
                    self._cat(billing),
                    domain.PAYMENT_METHODS[rng.randrange(len(domain.PAYMENT_METHODS))],
                    created,
                    None,
                    created,
                    self.clock,
                )
            )
        return rows

    def _payments(self, count: int, new_subscriptions: list[Row]) -> list[Row]:
        if count <= 0:
            return []
        rng = self.rng
        rates = self.rates
        subscriptions = self._payable_subscriptions(count, new_subscriptions)
        if not subscriptions:
            return []
        users = self.next_id["users"] - 1
        p_unparseable = rates.amount_unparseable
        p_negative = p_unparseable + rates.amount_negative
        p_orphan = p_negative + rates.orphan_payment
        p_duplicate = p_orphan + rates.duplicate_payment
        clean: list[Row] = []
        rows: list[Row] = []
        for payment_id in self._ids("payments", count):
            r = rng.random()
            if p_orphan <= r < p_duplicate and clean:
                # D7: the same charge written again under a new id.
                original = clean[rng.randrange(len(clean))]
                rows.append((payment_id, *original[1:]))
                self.summary.dirt["D7"] += 1
                continue
            sub_id, user_id, plan, billing = subscriptions[rng.randrange(len(subscriptions))]
            monthly, annual = self.state.prices.get(plan, (0, 0))
            cents = annual if billing == "annual" else monthly
            if r < p_unparseable:
                amount = dirt.UNPARSEABLE_AMOUNTS[rng.randrange(3)]
                self.summary.dirt["D5"] += 1
            elif r < p_negative:
                amount = "-" + dirt.plain_amount(cents)
                self.summary.dirt["D6"] += 1
            elif rng.random() < rates.amount_format:
                amount = dirt.formatted_amount(rng, cents)
                self.summary.dirt["D4"] += 1
            else:
                amount = dirt.plain_amount(cents)
            if p_negative <= r < p_orphan:
                sub_id = domain.ORPHAN_SUBSCRIPTION_BASE + rng.getrandbits(40)
                user_id = rng.randrange(users) + 1
                self.summary.dirt["D8"] += 1
            d = rng.random()
            if d < rates.discount_null:
                discount: str | None = None
                self.summary.dirt["D12"] += 1
            elif d < rates.discount_null + 0.2:
                discount = dirt.plain_amount(cents // 10)
            else:
                discount = "0.00"
            status = "failed" if rng.random() < 0.1 else "succeeded"
            created = self._created_at()
            row: Row = (
                payment_id,
                sub_id,
                user_id,
                f"ch_{rng.getrandbits(96):024x}",
                amount,
                discount,
                self._cat(domain.PAYMENT_CURRENCY),
                self._cat(status),
                created,
                created,
                self.clock,
            )
            rows.append(row)
            if r >= p_duplicate:
                clean.append(row)
        return rows

    def _payable_subscriptions(
        self, count: int, new_subscriptions: list[Row]
    ) -> list[tuple[int, int, str, str]]:
        """(id, user_id, canonical plan, canonical billing) of subscriptions that pay this cycle."""
        result = [
            (row[0], row[1], _canonical(row[2]), _billing(row[4])) for row in new_subscriptions
        ]
        existing = self._sample_existing("subscriptions", max(count // 2, 1))
        if existing:
            fetched = self.conn.execute(
                f"select id, user_id, lower(trim(plan)), lower(trim(billing_period)) "
                f"from {SCHEMA}.subscriptions where id = any(%s) order by id",
                (existing,),
            ).fetchall()
            result.extend((i, u, p, _billing(b)) for i, u, p, b in fetched)
        return result

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
                action = ("cancel", "upgrade", "downgrade", "idle")[rng.randrange(4)]
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
            self.conn.execute(
                f"update {SCHEMA}.subscriptions s set plan = u.plan, status = u.status, "
                "cancelled_at = u.cancelled_at, updated_at = %s "
                "from unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[]) "
                "as u(id, plan, status, cancelled_at) where s.id = u.id",
                (self.clock, *map(list, zip(*changes, strict=True))),
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
            self.conn.execute(
                f"update {SCHEMA}.payments p set status = u.status, updated_at = %s "
                "from unnest(%s::bigint[], %s::text[]) as u(id, status) where p.id = u.id",
                (self.clock, *map(list, zip(*refunds, strict=True))),
            )
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
            (uid, self._email(first, last, uid * 10 + self.rng.randrange(10)))
            for uid, first, last in users
        ]
        if changes:
            self.conn.execute(
                f"update {SCHEMA}.users t set email = u.email, updated_at = %s "
                "from unnest(%s::bigint[], %s::text[]) as u(id, email) where t.id = u.id",
                (self.clock, *map(list, zip(*changes, strict=True))),
            )
        self.summary.updated["users.email"] += len(changes)

    def _soft_delete_users(self, count: int) -> None:
        ids = [uid for uid, _, _ in self._alive_users(count)]
        if ids:
            self.conn.execute(
                f"update {SCHEMA}.users set deleted_at = %s, updated_at = %s where id = any(%s)",
                (self.clock, self.clock, ids),
            )
        self.summary.updated["users.soft_delete"] += len(ids)


def _canonical(value: str) -> str:
    return value.strip().lower()


def _billing(value: str | None) -> str:
    v = (value or "").strip().lower()
    return "annual" if v in ("annual", "yearly") else "monthly"


def _status(value: str | None) -> str:
    v = (value or "").strip().lower()
    return "cancelled" if v in ("canceled", "cancelled") else v


assert set(GENERATED_TABLES) <= set(TABLES)
