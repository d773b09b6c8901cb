"""Creates or updates the read-only replication user Airbyte connects as, from Secrets Manager."""

import base64
import hashlib
import hmac
import json
import os
import secrets
from typing import Any

import psycopg
from psycopg import sql

SOURCE_SCHEMA = "app"


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password` (RFC 5802/7677 stored and server keys)."""
    # Sending a verifier, never the password, keeps the password out of the statement log.
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def ensure_reader(
    conn: psycopg.Connection[Any], username: str, password: str, dbname: str, logical: bool
) -> None:
    """Idempotently make `username` a read-only login on the source schema, now and for future tables."""
    user = sql.Identifier(username)
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (username,)).fetchone()
    # Only a superuser may name the SUPERUSER attribute at all in ALTER ROLE (PostgreSQL 16), and
    # RDS's master user is none: a rerun leaves it out (the role was created without it).
    attributes = (
        "login nocreatedb nocreaterole" if exists else "login nosuperuser nocreatedb nocreaterole"
    )
    verb = sql.SQL("alter role" if exists else "create role")
    conn.execute(
        sql.SQL("{} {} with {} password {}").format(
            verb, user, sql.SQL(attributes), sql.Literal(scram_verifier(password))
        )
    )
    statements = [
        "alter role {u} set default_transaction_read_only = on",
        "create schema if not exists {s}",
        "grant connect on database {db} to {u}",
        "grant usage on schema {s} to {u}",
        "grant select on all tables in schema {s} to {u}",
        "alter default privileges in schema {s} grant select on tables to {u}",
    ]
    if logical:
        statements.append("grant rds_replication to {u}")
    for statement in statements:
        conn.execute(
            sql.SQL(statement).format(
                u=user, db=sql.Identifier(dbname), s=sql.Identifier(SOURCE_SCHEMA)
            )
        )


def main() -> None:
    import boto3

    env = os.environ
    client = boto3.client("secretsmanager", region_name=env["AWS_REGION"])

    def secret(arn: str) -> dict[str, Any]:
        return dict(json.loads(client.get_secret_value(SecretId=arn)["SecretString"]))

    admin = secret(env["MDP_DB_SECRET_ARN"])
    reader = secret(env["MDP_REPLICATION_SECRET_ARN"])
    with psycopg.connect(
        host=env["MDP_DB_HOST"],
        port=env["MDP_DB_PORT"],
        dbname=env["MDP_DB_NAME"],
        user=admin["username"],
        password=admin["password"],
        sslmode="verify-full",
        sslrootcert="/etc/mdp/rds-ca.pem",
        autocommit=True,
    ) as conn:
        ensure_reader(
            conn,
            reader["username"],
            reader["password"],
            env["MDP_DB_NAME"],
            env.get("MDP_LOGICAL_REPLICATION") == "true",
        )
    print(f"replication user {reader['username']} is ready (read-only on schema {SOURCE_SCHEMA})")


if __name__ == "__main__":
    main()
