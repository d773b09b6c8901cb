"""Creates or updates the read-only replication user Airbyte connects as, from Secrets Manager."""

import base64
import hashlib
import hmac
import json
import os
import secrets

import boto3
import psycopg
from psycopg import sql


def scram_verifier(password: str, iterations: int = 4096) -> str:
    # Sending a SCRAM verifier, never the password, keeps it out of the statement log.
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


def secret(client, arn: str) -> dict:
    return json.loads(client.get_secret_value(SecretId=arn)["SecretString"])


def main() -> None:
    env = os.environ
    client = boto3.client("secretsmanager", region_name=env["AWS_REGION"])
    admin = secret(client, env["MDP_DB_SECRET_ARN"])
    reader = secret(client, env["MDP_REPLICATION_SECRET_ARN"])
    user = sql.Identifier(reader["username"])
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
        exists = conn.execute(
            "select 1 from pg_roles where rolname = %s", (reader["username"],)
        ).fetchone()
        verb = sql.SQL("alter role" if exists else "create role")
        conn.execute(
            sql.SQL("{} {} with login nosuperuser nocreatedb nocreaterole password {}").format(
                verb, user, sql.Literal(scram_verifier(reader["password"]))
            )
        )
        statements = [
            "alter role {u} set default_transaction_read_only = on",
            "create schema if not exists app",
            "grant connect on database {db} to {u}",
            "grant usage on schema app to {u}",
            "grant select on all tables in schema app to {u}",
            "alter default privileges in schema app grant select on tables to {u}",
        ]
        if env.get("MDP_LOGICAL_REPLICATION") == "true":
            statements.append("grant rds_replication to {u}")
        for statement in statements:
            conn.execute(sql.SQL(statement).format(u=user, db=sql.Identifier(env["MDP_DB_NAME"])))
    print(f"replication user {reader['username']} is ready (read-only on schema app)")


if __name__ == "__main__":
    main()
