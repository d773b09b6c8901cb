"""The Airflow host's metadata connection reaches the stand-in by its socket alone."""

from __future__ import annotations

from rehearsal.airflow_setup import on_socket


def test_only_the_socket_of_the_metadata_connection_changes() -> None:
    rendered = "postgresql+psycopg://airflow@/airflow?host=/run/postgresql&connect_timeout=5"
    moved = on_socket(rendered, "/tmp/mdp-pg-0/sock", 5433)
    assert moved == (
        "postgresql+psycopg://airflow@/airflow?connect_timeout=5&host=/tmp/mdp-pg-0/sock&port=5433"
    )
    # A server named by host and port (TCP) moves to the socket too; user and password stay.
    tcp = on_socket("postgresql://airflow:pw@db.internal:5432/meta", "/s", 5432)
    assert tcp == "postgresql://airflow:pw@/meta?host=/s&port=5432"
