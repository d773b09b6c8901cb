"""`make bench-transform`: full dbt build over ~10M raw payments, then an incremental one after a day.

The same simulated day (same numbers of new payments, refunds and plan changes) is also run on
a history of ~1M payments, so the incremental run's growth with the history is measured. From
the warehouse the full build left, each history gets a first day and then a second one of the
same size; the second day's run is the daily run the figures measure (a daily run follows the
day before's, not a full build), and the first day's is recorded too. This runs `--repeat`
times on each history, alternating between the two, and the full build runs twice. The figures
use the best (shortest) run of each, as the ingestion benchmark does: on a shared machine a run
is slowed by other load and never sped up by it, so the best run is the one nearest to a quiet
machine. The medians are printed and recorded beside them. Figures go to
`.local/bench/transform.json`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.bench import copy_to_disk, write_figures
from core.catalog import RAW_SCHEMA
from transform import runner as transform

# The full build runs this many times on each history; the share uses the best.
FULL_BUILDS = 2

AIRBYTE = """
    gen_random_uuid()::varchar as _airbyte_raw_id,
    {extracted} as _airbyte_extracted_at,
    '{{"changes": []}}'::json as _airbyte_meta,
    1::bigint as _airbyte_generation_id
"""


def generate_raw(path: Path, payments: int, days: int) -> None:
    """The raw layer of contract section 3, with every kind of dirt, written by SQL in DuckDB."""
    users = max(payments // 20, 100)
    subscriptions = max(payments // 16, 100)
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute(f"create or replace macro t0() as now()::timestamptz - interval {days + 1} day")
    # The initial sync runs at the end of the history: no row it extracts can have been updated
    # or extracted later than that, even one whose cancellation or deletion is dated ahead.
    con.execute(f"create or replace macro synced(ts) as least(ts, t0() + interval {days} day)")
    con.execute(
        f"""
        create or replace table {RAW_SCHEMA}.plans as
        select id::bigint as id, name, monthly_price::decimal(10,2) as monthly_price,
            annual_price::decimal(10,2) as annual_price, currency,
            t0() as created_at, t0() as updated_at, {AIRBYTE.format(extracted="t0()")}
        from (values (1, 'Basic', 10.00, 100.00, 'USD'), (2, 'Bronze', 15.00, 150.00, 'USD'),
                     (3, 'Standard', 25.00, 250.00, 'USD'), (4, 'Gold', 40.00, 400.00, 'USD'),
                     (5, 'Platinum', 99.99, 999.99, 'USD')) as p(id, name, monthly_price, annual_price, currency)
        """
    )
    con.execute(
        f"""
        create or replace table {RAW_SCHEMA}.users as
        with s as (select range + 1 as i, t0() + (range * {days} * 86400 // {users}) * interval 1 second as ts
                   from range({users}))
        select i::bigint as id, gen_random_uuid() as uid, 'First' || i as first_name, 'Last' || i as last_name,
            case when i % 50 = 0 then 'user' || i || '.example.com'
                 when i % 10 = 0 then ' USER' || i || '@EXAMPLE.COM ' else 'user' || i || '@example.com' end as email,
            '+1-555-' || lpad((i % 10000)::varchar, 4, '0') as phone,
            case i % 4 when 0 then '1990-04-12' when 1 then '1990/04/12' when 2 then '12.04.1990'
                 else '639878400' end as date_of_birth,
            case i % 3 when 0 then 'US' when 1 then ' us ' else 'Ca' end as country,
            md5(i::varchar) as password, '123-45-' || i as social_insurance_number,
            case when i % 500 = 0 then ts + interval 30 day end as deleted_at,
            ts as created_at, synced(coalesce(case when i % 500 = 0 then ts + interval 30 day end, ts)) as updated_at,
            {AIRBYTE.format(extracted="synced(coalesce(case when i % 500 = 0 then ts + interval 30 day end, ts) + interval 1 hour)")}
        from s
        """
    )
    for table, extra in (
        (
            "banks",
            "'Bank' || (i % 7) as bank_name, lpad(i::varchar, 12, '0') as account_number, "
            "'GB29NWBK' || lpad(i::varchar, 14, '0') as iban, '021000021' as routing_number, "
            "'NWBKGB2L' as swift_bic",
        ),
        (
            "credit_cards",
            "'4111 1111 ' || lpad(i::varchar, 8, '0') as card_number, "
            "case i % 2 when 0 then 'Visa' else ' MASTERCARD' end as card_type, '12/29' as expiry",
        ),
    ):
        con.execute(
            f"""
            create or replace table {RAW_SCHEMA}.{table} as
            with s as (select range + 1 as i, t0() + (range * {days} * 86400 // {users}) * interval 1 second as ts
                       from range({users}))
            select i::bigint as id, i::bigint as user_id, {extra}, ts as created_at, ts as updated_at,
                {AIRBYTE.format(extracted="ts + interval 1 hour")}
            from s
            """
        )
    con.execute(
        f"""
        create or replace table {RAW_SCHEMA}.subscriptions as
        with s as (select range + 1 as i, t0() + (range * {days} * 86400 // {subscriptions}) * interval 1 second as ts
                   from range({subscriptions}))
        select i::bigint as id, (1 + (i * 7919) % {users})::bigint as user_id,
            case i % 5 when 0 then 'Basic' when 1 then ' bronze' when 2 then 'STANDARD' when 3 then 'Gold '
                 else 'Platinum' end as plan,
            case when i % 10 < 7 then 'active' when i % 10 = 7 then (case i % 3 when 0 then 'canceled'
                 when 1 then 'cancelled' else 'CANCELLED' end) when i % 10 = 8 then 'idle' else 'Blocked' end as status,
            case i % 5 when 0 then 'Yearly' when 1 then 'annual' else 'monthly' end as billing_period,
            case i % 2 when 0 then 'card' else 'bank' end as payment_method,
            ts as started_at,
            case when i % 10 = 7 then ts + interval 90 day end as cancelled_at,
            ts as created_at, synced(case when i % 10 = 7 then ts + interval 90 day else ts end) as updated_at,
            {AIRBYTE.format(extracted="synced(case when i % 10 = 7 then ts + interval 90 day else ts end + interval 1 hour)")}
        from s
        """
    )
    con.execute(
        payments_sql(0, payments, 0, days * 86400, subscriptions, "create or replace table")
    )
    con.close()


def payments_sql(
    first: int, count: int, start_seconds: int, span_seconds: int, subscriptions: int, verb: str
) -> str:
    """Payments `first+1 .. first+count`, spread evenly over `span_seconds` from `t0() + start_seconds`."""
    return f"""
        {verb} {RAW_SCHEMA}.payments {"as" if verb.startswith("create") else ""}
        with s as (
            select range + 1 as i,
                t0() + ({start_seconds} + (range - {first}) * {span_seconds}::bigint // {count})
                    * interval 1 second as ts
            from range({first}, {first + count})
        )
        select i::bigint as id,
            (case when i % 200 = 0 then {subscriptions} + i else 1 + i % {subscriptions} end)::bigint
                as subscription_id,
            (1 + i % 1000)::bigint as user_id,
            'ch_' || (case when i % 100 = 1 and i > 1 then i - 1 else i end) as charge_id,
            case when i % 200 = 3 then 'N/A' when i % 500 = 4 then '-' || (10 + i % 90) || '.00'
                 when i % 20 = 5 then '$' || (10 + i % 90) || '.50'
                 when i % 20 = 6 then 'USD ' || (10 + i % 90) || '.50'
                 when i % 20 = 7 then (10 + i % 90) || ',50'
                 when i % 20 = 8 then ' ' || (10 + i % 90) || '.50 '
                 else (10 + i % 90) || '.50' end as amount,
            case when i % 10 = 0 then null else (i % 5)::decimal(10,2) end as discount_amount,
            case when i % 3 = 0 then 'USD' else 'usd' end as currency,
            case when i % 20 = 0 then 'failed' when i % 33 = 0 then 'refunded'
                 when i % 7 = 0 then ' Succeeded' else 'succeeded' end as status,
            ts as paid_at, ts as created_at, ts as updated_at,
            {AIRBYTE.format(extracted="ts + interval 1 hour")}
        from s
    """


def resync(con: duckdb.DuckDBPyConnection, table: str, where: str, changes: str) -> None:
    """Rows changed at the source, loaded the way `mdp sync` loads them: the old raw rows are
    deleted and the new versions appended, with this sync's extraction time and raw ids."""
    synced = "now()::timestamptz"
    con.execute(
        f"""
        create or replace temp table changed as
        select * replace ({changes}, {synced} as updated_at, {synced} as _airbyte_extracted_at,
            gen_random_uuid()::varchar as _airbyte_raw_id)
        from {RAW_SCHEMA}.{table} where {where}
        """
    )
    con.execute(f"delete from {RAW_SCHEMA}.{table} where {where}")
    con.execute(f"insert into {RAW_SCHEMA}.{table} select * from changed")


@dataclass(frozen=True)
class Day:
    """What one simulated day changes: the same at every history size."""

    payments: int
    refunds: int
    plan_changes: int

    @classmethod
    def of(cls, payments: int, days: int) -> Day:
        """An average day of a history of `payments` payments over `days` days."""
        return cls(payments // days, payments // 10007, max(payments // 16, 100) // 1009)


# The plan each batch of plan changes moves subscriptions to.
CHANGED_PLANS = ("Platinum", "Gold")


def add_day(path: Path, payments: int, days: int, day: Day, batch: int = 0) -> None:
    """One more simulated day: its payments, refunds of older ones, plan changes, late syncs.

    `batch` 1 is a second day of the same size on other rows: payments numbered after the first
    day's, other payments refunded and other subscriptions moved to another plan.
    """
    subscriptions = max(payments // 16, 100)
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create or replace macro t0() as now()::timestamptz - interval {days + 1} day")
    con.execute("begin")
    first = payments + batch * day.payments
    con.execute(
        payments_sql(first, day.payments, days * 86400, 86400, subscriptions, "insert into")
    )
    refunded = max(payments // max(day.refunds, 1), 1)
    resync(
        con,
        "payments",
        f"id <= {payments} and id > {batch} and (id - {batch}) % {refunded} = 0",
        "'refunded' as status",
    )
    con.execute("commit")
    con.execute("begin")
    changed = max(subscriptions // max(day.plan_changes, 1), 1)
    resync(
        con,
        "subscriptions",
        f"id > {batch} and (id - {batch}) % {changed} = 0",
        f"'{CHANGED_PLANS[batch]}' as plan",
    )
    con.execute("commit")
    con.close()


@dataclass(frozen=True)
class Timing:
    """One dbt invocation: its wall time, and the CPU time of this process (all its threads,
    DuckDB's included), which other load on a shared machine moves far less than wall time."""

    seconds: float
    cpu_s: float


def timed_run(args: list[str], label: str = "", slowest: int = 0) -> Timing:
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = transform.run_dbt(args, target="local")
    timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
    if not outcome.success:
        sys.exit(f"dbt {' '.join(args)} failed: {outcome.statuses}")
    if slowest:
        nodes = sorted(outcome.results, key=lambda result: result.execution_time, reverse=True)
        in_nodes = sum(result.execution_time for result in outcome.results)
        print(
            f"{label}: {timing.seconds:.2f}s (CPU {timing.cpu_s:.2f}s), {in_nodes:.2f}s in "
            f"{len(nodes)} nodes; slowest:"
        )
        for result in nodes[:slowest]:
            print(f"  {result.execution_time:6.2f}s  {result.node.name}")
    return timing


def check_against_full_rebuild(warehouse: Path, threads: int) -> None:
    """Untimed: the incremental result must equal a full rebuild's, table by table."""
    incremental = warehouse / "analytics_incremental.duckdb"
    shutil.copy(warehouse / "analytics.duckdb", incremental)
    try:
        timed_run(["run", "--threads", str(threads), "--full-refresh"])
        differing = transform.differing_tables(warehouse / "analytics.duckdb", incremental)
    finally:
        incremental.unlink()
    if differing:
        sys.exit(
            "The incremental build differs from a full rebuild in "
            + ", ".join(f"{table} ({rows} rows)" for table, rows in differing.items())
            + ". An incremental model misses a change; rerun with --keep to inspect the warehouse."
        )
    print("incremental result equals a full rebuild, table by table")


@dataclass
class History:
    """One history size: its warehouse after the full build, kept to start each day from.

    Its dbt runs use MDP_HOME=`home`; the figures still go to the caller's MDP_HOME.
    """

    payments: int
    home: Path
    full_runs_s: list[float] = field(default_factory=list)
    # The first day after the full build, and the day after it (the figures' day).
    first_day_s: list[float] = field(default_factory=list)
    incremental_s: list[float] = field(default_factory=list)
    # CPU seconds of the same full builds and figures' days, in the same order.
    full_cpu_s: list[float] = field(default_factory=list)
    incremental_cpu_s: list[float] = field(default_factory=list)

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def built(self) -> Path:
        return self.home / "built"

    @property
    def full_s(self) -> float:
        return min(self.full_runs_s)

    @property
    def best_s(self) -> float:
        return min(self.incremental_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.incremental_s)

    @property
    def first_day_best_s(self) -> float:
        return min(self.first_day_s)


def build_history(payments: int, days: int, options: argparse.Namespace) -> History:
    """The raw layer of `payments` payments and the timed full build over it."""
    home = Path(tempfile.mkdtemp(prefix="mdp-bench-transform-"))
    history = History(payments, home)
    history.warehouse.mkdir(parents=True)
    with transform.environment({"MDP_HOME": str(home)}):
        started = time.perf_counter()
        generate_raw(history.warehouse / "raw.duckdb", payments, days)
        print(f"raw layer: {payments:,} payments generated in {time.perf_counter() - started:.1f}s")
        # Parse first, so the timed run does not pay for a cold project parse.
        timed_run(["parse"])
        for run in range(FULL_BUILDS):
            timing = timed_run(
                ["run", "--threads", str(options.threads), "--full-refresh"],
                f"full build {run + 1} of {FULL_BUILDS}, {payments:,}",
                options.slowest if run == 0 else 0,
            )
            history.full_runs_s.append(timing.seconds)
            history.full_cpu_s.append(timing.cpu_s)
    copy_to_disk(history.warehouse, history.built)
    return history


def cpu_figures(large: History, small: History) -> dict[str, float]:
    """The share and the growth in CPU seconds: the least CPU of each kind of run.

    dbt runs in this process, so its CPU time counts DuckDB's threads too. On a shared machine
    other load stretches wall time far more than CPU time, so these vary less from run to run;
    unlike wall time, they do not credit the larger history for keeping both cores busier.
    """
    full, day, small_day = (
        min(large.full_cpu_s),
        min(large.incremental_cpu_s),
        min(small.incremental_cpu_s),
    )
    return {
        "full_cpu_s": round(full, 3),
        "incremental_cpu_s": round(day, 3),
        "small_incremental_cpu_s": round(small_day, 3),
        "incremental_share_cpu": round(day / full, 4),
        "incremental_growth_cpu": round(day / small_day, 4),
    }


def run_day(history: History, days: int, day: Day, options: argparse.Namespace, show: bool) -> None:
    """From the warehouse as the full build left it, run two days; the second is the figures'.

    A daily run follows another daily run, so the figures use the second day; the first is
    recorded too. Each start is a copy of the built warehouse, written to disk before the days
    (`copy_to_disk`): left dirty in the page cache, the 1.8 GB copy at 10M was written back by
    DuckDB's fsync when the first day's run closed the file, inside its timing.
    """
    shutil.rmtree(history.warehouse)
    copy_to_disk(history.built, history.warehouse)
    label = f"incremental build, {history.payments:,}"
    with transform.environment({"MDP_HOME": str(history.home)}):
        for batch in (0, 1):
            add_day(history.warehouse / "raw.duckdb", history.payments, days, day, batch)
            # Each history has its own MDP_HOME, which the profile reads: parse again, untimed.
            timed_run(["parse"])
            timing = timed_run(
                ["run", "--threads", str(options.threads)],
                f"{label}, {('first day after the full build', 'the day after')[batch]}",
                options.slowest if show and batch else 0,
            )
            if batch == 0:
                history.first_day_s.append(timing.seconds)
            else:
                history.incremental_s.append(timing.seconds)
                history.incremental_cpu_s.append(timing.cpu_s)
    print(
        f"{label}, repeat {len(history.incremental_s)}: first day {history.first_day_s[-1]:.2f}s, "
        f"the day after {history.incremental_s[-1]:.2f}s"
    )


def check(history: History, threads: int) -> None:
    with transform.environment({"MDP_HOME": str(history.home)}):
        check_against_full_rebuild(history.warehouse, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument(
        "--small",
        type=int,
        default=1_000_000,
        help="payments of the smaller history the same day is also run on (growth baseline)",
    )
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--threads", type=int, default=2, help="dbt threads, same for both runs")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="times the two days run on each history, alternating between the histories; "
        "the figures use the best run (the medians are recorded too)",
    )
    parser.add_argument(
        "--slowest", type=int, default=8, help="print this many slowest models per run"
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip the (untimed) comparison of the incremental result with a full rebuild",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark warehouses")
    options = parser.parse_args()
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")

    day = Day.of(options.payments, options.days)
    print(
        f"one simulated day: {day.payments:,} payments, {day.refunds:,} refunds, "
        f"{day.plan_changes:,} plan changes"
    )
    histories: list[History] = []
    try:
        for payments in (options.payments, options.small):
            histories.append(build_history(payments, options.days, options))
        large, small = histories
        # The same day on both histories, one after the other, so a change in the machine's
        # load falls on both sizes alike; each run starts from the full build's warehouse.
        for i in range(options.repeat):
            for history in histories:
                run_day(history, options.days, day, options, show=i == 0)
        if not options.no_check:
            check(large, options.threads)
    finally:
        for history in histories:
            if options.keep:
                print(f"warehouse kept in {history.warehouse}")
            else:
                shutil.rmtree(history.home, ignore_errors=True)
    share = large.best_s / large.full_s
    growth = large.best_s / small.best_s
    median_share = large.median_s / statistics.median(large.full_runs_s)
    median_growth = large.median_s / small.median_s
    first_share = large.first_day_best_s / large.full_s
    first_growth = large.first_day_best_s / small.first_day_best_s
    load = os.getloadavg()[0]
    print()
    print("Incremental runs of the day after the first (best runs; all runs in order):")
    print(f"{'payments':>12} {'full build':>11} {'incremental':>12} {'share':>7}  runs (full; day)")
    for h in (large, small):
        full_runs = ", ".join(f"{s:.2f}" for s in h.full_runs_s)
        runs = ", ".join(f"{s:.2f}" for s in h.incremental_s)
        print(
            f"{h.payments:>12,} {h.full_s:>10.2f}s {h.best_s:>11.2f}s "
            f"{h.best_s / h.full_s:>7.1%}  {full_runs}; {runs}"
        )
    print(f"incremental / full at {large.payments:,}:   {share:8.1%}  (goal <= 10%)")
    print(
        f"incremental growth {small.payments:,} -> {large.payments:,}: {growth:8.2f}  (goal <= 1.5)"
    )
    print(f"with the medians instead: share {median_share:.1%}, growth {median_growth:.2f}")
    cpu = cpu_figures(large, small)
    print(
        f"in CPU seconds (least of each): full {cpu['full_cpu_s']:.2f}s, the day "
        f"{cpu['incremental_cpu_s']:.2f}s at {large.payments:,} and "
        f"{cpu['small_incremental_cpu_s']:.2f}s at {small.payments:,}: share "
        f"{cpu['incremental_share_cpu']:.1%}, growth {cpu['incremental_growth_cpu']:.2f}"
    )
    print(
        f"first day after the full build: {large.first_day_best_s:.2f}s at {large.payments:,}, "
        f"{small.first_day_best_s:.2f}s at {small.payments:,} "
        f"(share {first_share:.1%}, growth {first_growth:.2f})"
    )
    print(f"load average now: {load:.1f} on {os.cpu_count()} cores")
    summary = {
        "payments": large.payments,
        "small_payments": small.payments,
        "day": {
            "payments": day.payments,
            "refunds": day.refunds,
            "plan_changes": day.plan_changes,
        },
        "threads": options.threads,
        "repeat": options.repeat,
        "statistic": "best",
        "full_s": round(large.full_s, 3),
        "full_runs_s": [round(s, 3) for s in large.full_runs_s],
        "incremental_s": round(large.best_s, 3),
        "incremental_median_s": round(large.median_s, 3),
        "incremental_runs_s": [round(s, 3) for s in large.incremental_s],
        "small_full_s": round(small.full_s, 3),
        "small_full_runs_s": [round(s, 3) for s in small.full_runs_s],
        "small_incremental_s": round(small.best_s, 3),
        "small_incremental_median_s": round(small.median_s, 3),
        "small_incremental_runs_s": [round(s, 3) for s in small.incremental_s],
        "incremental_share": round(share, 4),
        "incremental_growth": round(growth, 4),
        "median_incremental_share": round(median_share, 4),
        "median_incremental_growth": round(median_growth, 4),
        "first_day_incremental_s": round(large.first_day_best_s, 3),
        "first_day_incremental_runs_s": [round(s, 3) for s in large.first_day_s],
        "small_first_day_incremental_s": round(small.first_day_best_s, 3),
        "small_first_day_incremental_runs_s": [round(s, 3) for s in small.first_day_s],
        "first_day_incremental_share": round(first_share, 4),
        "first_day_incremental_growth": round(first_growth, 4),
        **cpu,
        "full_runs_cpu_s": [round(s, 3) for s in large.full_cpu_s],
        "incremental_runs_cpu_s": [round(s, 3) for s in large.incremental_cpu_s],
        "small_incremental_runs_cpu_s": [round(s, 3) for s in small.incremental_cpu_s],
        "checked_against_full_rebuild": not options.no_check,
    }
    print(f"Figures: {write_figures('transform', summary)}")


if __name__ == "__main__":
    main()
