"""The reconciliation's guarantee: the window each sync read, plus every id bucket within k syncs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql

from core.catalog import SOURCE_SCHEMA, STREAMS, Stream
from ingestion import source as source_module
from ingestion import state
from ingestion.errors import IngestionError, ReconciliationFailed, SourceUnavailable
from ingestion.reconcile import (
    CONNECTIONS_ENV,
    MAX_IDS_ENV,
    Scope,
    SourceAggregates,
    max_buckets_from_env,
    plan_scope,
    syncs_to_cover,
)
from ingestion.source import BUCKETS_PER_QUERY, BUCKETS_SQL, ReadPlan, SourceReader
from ingestion.sync import run_sync
from tests.ingestion.conftest import assert_mirrors, raw_query

SPAN = 3
BUCKET_IDS = 40


@pytest.fixture
def rotating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_RECONCILE_SPAN", str(SPAN))
    monkeypatch.setenv("MDP_RECONCILE_BUCKET_IDS", str(BUCKET_IDS))


def test_slices_cover_every_bucket_within_k_syncs() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for buckets in (1, 2, 6, 7, 20, 101):
        for span in (1, 3, 7):
            seen: dict[int, list[int]] = {b: [] for b in range(buckets)}
            nxt = 0
            for sync in range(3 * span):
                scope = plan_scope("t", since, buckets * 10 - 1, nxt, span, 10, full=False)
                assert scope.end_bucket - scope.first_bucket <= -(-buckets // span)
                for b in range(scope.first_bucket, scope.end_bucket):
                    seen[b].append(sync)
                nxt = scope.next_bucket
            for b, syncs in seen.items():
                gaps = [y - x for x, y in zip([-1, *syncs], [*syncs, 3 * span], strict=True)]
                assert max(gaps) <= span, (buckets, span, b, syncs)


def test_a_capped_slice_still_covers_every_bucket_within_the_stated_syncs() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for buckets in (1, 5, 20, 101, 275):
        for span in (1, 3, 7):
            for cap in (1, 2, 8):
                within = syncs_to_cover(buckets, span, cap)
                # The cap only ever lengthens the cycle, and only when k slices exceed it.
                assert within == max(-(-buckets // min(cap, -(-buckets // span))), 1)
                assert within >= min(span, buckets)
                seen: dict[int, list[int]] = {b: [] for b in range(buckets)}
                nxt = 0
                for sync in range(3 * within):
                    scope = plan_scope(
                        "t", since, buckets * 10 - 1, nxt, span, 10, full=False, max_buckets=cap
                    )
                    assert 1 <= scope.end_bucket - scope.first_bucket <= cap
                    for b in range(scope.first_bucket, scope.end_bucket):
                        seen[b].append(sync)
                    nxt = scope.next_bucket
                for b, syncs in seen.items():
                    gaps = [y - x for x, y in zip([-1, *syncs], [*syncs, 3 * within], strict=True)]
                    assert max(gaps) <= within, (buckets, span, cap, b, syncs)


def test_first_sync_and_full_mode_check_every_bucket() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert plan_scope("t", None, 999, 5, 7, 10, full=False).full
    assert plan_scope("t", since, 999, 5, 7, 10, full=True).end_bucket == 100
    assert plan_scope("t", since, None, 0, 7, 10, full=False).full


@pytest.mark.postgres
def test_a_row_corrupted_outside_the_window_is_reported_within_k_syncs(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None], rotating: None
) -> None:
    cycle(300)
    run_sync(source_dsn, raw_path)
    cycle(300)
    run_sync(source_dsn, raw_path)
    # A payment well outside the next syncs' read windows, altered in RAW behind the loader.
    (victim,) = raw_query(
        raw_path,
        "select max(id) from postgres_airbyte.payments where updated_at < "
        "(select max(updated_at) - interval 1 hour from postgres_airbyte.payments)",
    )[0]
    con = duckdb.connect(str(raw_path))
    con.execute(
        "update postgres_airbyte.payments set updated_at = updated_at - interval 1 day "
        "where id = ?",
        [victim],
    )
    con.close()
    bucket = victim // BUCKET_IDS
    lo = bucket * BUCKET_IDS

    failures = []
    for _ in range(SPAN):
        try:
            result = run_sync(source_dsn, raw_path)
        except ReconciliationFailed as failure:
            failures.append(failure)
            break
        # Until the rotation reaches the bucket, syncs pass and check only their slice.
        scope = {r.stream: r.scope for r in result.reconciliations}["payments"]
        assert not scope.full and not scope.first_bucket <= bucket < scope.end_bucket
    assert failures, f"the altered payment {victim} was not found within {SPAN} syncs"
    (failure,) = failures
    assert failure.streams == ["payments"]
    assert f"payments ids {lo}..{lo + BUCKET_IDS - 1}" in str(failure)
    assert "(id, updated_at) differ" in str(failure)
    # Nothing is lost: the sync's rows and cursors were committed before the check, and the
    # bucket's mismatch is on record in the loader's state.
    assert failure.result is not None
    assert raw_query(
        raw_path,
        f"select matched from {state.BUCKETS_TABLE} where stream = 'payments' and bucket = "
        f"{victim // BUCKET_IDS}",
    ) == [(False,)]

    run_sync(source_dsn, raw_path, stream_names=["payments"], full_refresh=True)
    assert_mirrors(source_dsn, raw_path)


@pytest.mark.postgres
def test_an_incremental_sync_checks_its_window_and_one_slice_only(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None], rotating: None
) -> None:
    cycle(300)
    first = run_sync(source_dsn, raw_path)
    assert all(r.scope.full for r in first.reconciliations)
    cycle(100)
    result = run_sync(source_dsn, raw_path)

    payments = {r.stream: r for r in result.reconciliations}["payments"]
    assert payments.ok and not payments.scope.full
    assert payments.window is not None and payments.window.source.rows > 0
    (total,) = raw_query(raw_path, "select count(*) from postgres_airbyte.payments")[0]
    assert 0 < payments.rows_checked < total
    full = run_sync(source_dsn, raw_path, reconcile="full")
    assert all(r.scope.full and r.ok for r in full.reconciliations)
    assert {r.stream: r for r in full.reconciliations}["payments"].rows_checked == total


def test_a_bad_span_is_named_with_its_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MDP_RECONCILE_SPAN", "0")
    with pytest.raises(IngestionError, match="MDP_RECONCILE_SPAN='0' is not a whole number"):
        run_sync("postgresql://nowhere.invalid/app", tmp_path / "raw.duckdb")


def test_the_slice_has_no_cap_unless_mdp_reconcile_max_ids_sets_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MAX_IDS_ENV, raising=False)
    assert max_buckets_from_env(16_384) is None
    monkeypatch.setenv(MAX_IDS_ENV, "0")
    assert max_buckets_from_env(16_384) is None
    monkeypatch.setenv(MAX_IDS_ENV, "131072")
    assert max_buckets_from_env(16_384) == 8
    # Fewer ids than a bucket still checks one bucket per sync.
    monkeypatch.setenv(MAX_IDS_ENV, "10")
    assert max_buckets_from_env(16_384) == 1
    monkeypatch.setenv(MAX_IDS_ENV, "-5")
    with pytest.raises(IngestionError, match=MAX_IDS_ENV):
        max_buckets_from_env(16_384)


@pytest.mark.postgres
def test_the_slice_split_over_several_connections_sums_the_same(
    source_dsn: str, cycle: Callable[..., None], rotating: None
) -> None:
    cycle(300)
    streams = list(STREAMS)

    def aggregates(connections: int) -> dict[str, SourceAggregates]:
        with SourceReader(source_dsn) as source:
            columns = source.columns(streams)
            since = datetime(2000, 1, 1, tzinfo=UTC)

            def planner(s: Stream, max_id: int | None) -> Scope:
                return plan_scope(s.name, since, max_id, 0, 1, 2, False)

            source.start(
                [ReadPlan(s, columns[s.name], since) for s in streams], planner, connections
            )
            for s in streams:
                for _ in source.chunks(s):
                    pass
            return source.source_aggregates()

    one = aggregates(1)
    payments = one["payments"]
    # Span 1: the slice is every bucket of 2 ids, more of them than one query takes.
    assert payments.scope.end_bucket - payments.scope.first_bucket > BUCKETS_PER_QUERY
    assert payments.window is not None and payments.window.rows > 0
    with psycopg.connect(source_dsn) as conn:
        (total,) = conn.execute("select count(*) from app.payments").fetchone() or (0,)
    assert sum(a.rows for a in payments.buckets.values()) == total
    assert aggregates(3) == one


@pytest.mark.postgres
def test_a_slice_reads_only_the_id_and_cursor_index(
    source_dsn: str, cycle: Callable[..., None]
) -> None:
    """The bucket sums are an index-only scan of the source's (id) include (updated_at) index."""
    cycle(300)
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("vacuum analyze app.payments")
        names = {
            "pk": sql.Identifier("id"),
            "cursor": sql.Identifier("updated_at"),
            "table": sql.Identifier(SOURCE_SCHEMA, "payments"),
        }
        query = sql.SQL(BUCKETS_SQL).format(
            width=sql.Literal(40), lo=sql.Literal(0), hi=sql.Literal(400), **names
        )
        conn.execute("set enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(sql.SQL("explain ") + query, ()).fetchall())
    assert "Index Only Scan using payments_id_updated_at_idx" in plan, plan
    assert "HashAggregate" not in plan, plan


def test_a_bad_connection_count_is_named_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CONNECTIONS_ENV, "0")
    with pytest.raises(IngestionError, match=f"{CONNECTIONS_ENV}='0' is not a whole number"):
        run_sync("postgresql://nowhere.invalid/app", tmp_path / "raw.duckdb")


@pytest.mark.postgres
def test_a_failed_aggregate_query_fails_the_reconciliation_instead_of_hanging(
    source_dsn: str, cycle: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle(300)
    streams = list(STREAMS)
    run = source_module.AggregateQuery.run

    def fails_on_payments(self: source_module.AggregateQuery, conn: psycopg.Connection) -> object:
        if self.stream.name == "payments":
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return run(self, conn)

    monkeypatch.setattr(source_module.AggregateQuery, "run", fails_on_payments)
    with SourceReader(source_dsn) as source:
        columns = source.columns(streams)

        def planner(s: Stream, max_id: int | None) -> Scope:
            return plan_scope(s.name, None, max_id, 0, 1, 2, True)

        source.start([ReadPlan(s, columns[s.name], None) for s in streams], planner, 3)
        for s in streams:
            for _ in source.chunks(s):
                pass
        with pytest.raises(SourceUnavailable, match="server closed the connection"):
            source.source_aggregates()
