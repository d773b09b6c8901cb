"""A first cycle lands in the source."""

from __future__ import annotations

import psycopg
import pytest

from source_generator import GeneratorConfig, generate_cycle

pytestmark = pytest.mark.postgres


def test_a_cycle_inserts_rows_in_every_generated_table(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        summary = generate_cycle(conn, GeneratorConfig(rows_per_cycle=500, seed=1))
        counts = {
            t: conn.execute(f"select count(*) from app.{t}").fetchone()[0]  # type: ignore[index]
            for t in ("users", "banks", "credit_cards", "subscriptions", "payments", "plans")
        }
    assert summary.rows_inserted == 500
    assert counts["plans"] == 5
    for table, n in summary.inserted.items():
        assert counts[table] == n > 0


def test_later_cycles_update_existing_rows(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        config = GeneratorConfig(rows_per_cycle=2000, seed=1)
        generate_cycle(conn, config)
        second = generate_cycle(conn, config)
    assert second.updated["payments.refund"] > 0
    assert second.updated["users.email"] > 0
    assert second.rows_updated > 0
