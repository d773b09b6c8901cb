"""The generator host: artifact, replication user (grants checked), one generator cycle into the stand-in RDS."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from infra import outputs
from rehearsal.database import StandInDatabase
from rehearsal.hosts import HostRun, written_files
from rehearsal.sandbox import read_env_file
from rehearsal.wires import GENERATOR_WIRES

HOST_ENV = "/etc/mdp/host.env"
SOURCE_SCHEMA = "app"


def rehearse_generator(host: HostRun, database: StandInDatabase) -> None:
    run, applied = host.run, host.applied
    wired = host.check_wires(GENERATOR_WIRES)
    env = host_env(host)
    master = next(iter(applied.master_secrets), None)
    if master is None:
        host.failed(
            "RDS master secret",
            "the database declares no RDS-managed master secret",
            "aws:rds/instance manageMasterUserPassword",
            "source-db-postgres",
        )
        return
    db_name = env.get("MDP_DB_NAME") or str(run.outputs.get(outputs.DB_NAME, "app"))
    logical = env.get("MDP_LOGICAL_REPLICATION") == "true"
    database.reset(db_name, master.username, master.password, logical)
    host.ok(
        "RDS stand-in: PostgreSQL 16 (pgserver)",
        f"database {db_name}, master user {master.username} with the password in its secret",
    )
    _hints(host, env)
    box = host.boot()
    if box is None:
        return
    # Only the database's address changes: RDS's endpoint becomes the local server's socket.
    box.set_env_values(
        HOST_ENV, {"MDP_DB_HOST": database.socket_dir, "MDP_DB_PORT": str(database.port)}
    )
    host.ok("host.env: MDP_DB_HOST/MDP_DB_PORT → the stand-in's socket", "nothing else rewritten")
    host.skipped(
        "TLS sslmode=verify-full against the RDS CA",
        "the stand-in is reached over a unix socket, where libpq uses no TLS",
    )
    host.skipped("sshd: the Airbyte tunnel user and its forwarding rules", "needs a real sshd")
    healthy = host.runcmd()
    if healthy and wired:
        check_reader(host, database, db_name, logical)
        check_cycle(host, database, db_name, master.username, master.password)


def host_env(host: HostRun) -> dict[str, str]:
    files = written_files(host.user_data)
    return read_env_file(files.get(HOST_ENV, ""))


def _hints(host: HostRun, env: dict[str, str]) -> None:
    policy = host.policy_name
    host.hints = [
        (
            r"(?s)mdp-generat.*(GetSecretValue|secret)",
            f"{HOST_ENV} MDP_DB_SECRET_ARN → secretsmanager:GetSecretValue",
            f"secret {env.get('MDP_DB_SECRET_ARN')} (output {outputs.DB_MASTER_SECRET_ARN}) "
            f"and policy {policy} (ReadDatabaseSecrets)",
        ),
        (
            r"GetSecretValue|ResourceNotFound|secret",
            f"{HOST_ENV} MDP_DB_SECRET_ARN / MDP_REPLICATION_SECRET_ARN → secretsmanager:GetSecretValue",
            f"secrets {env.get('MDP_DB_SECRET_ARN')} (output {outputs.DB_MASTER_SECRET_ARN}), "
            f"{env.get('MDP_REPLICATION_SECRET_ARN')} (output {outputs.DB_REPLICATION_SECRET_ARN}) "
            f"and policy {policy} (ReadDatabaseSecrets)",
        ),
        (
            r"ssm:GetParameter|GetParameter operation",
            f"{HOST_ENV} MDP_ARTIFACT_PARAMETER → ssm:GetParameter",
            f"parameter {env.get('MDP_ARTIFACT_PARAMETER')} and policy {policy} (ReadArtifactPointer)",
        ),
        (
            r"s3:GetObject|HeadObject operation|GetObject operation|s3 cp",
            f"{HOST_ENV} MDP_ARTIFACT_BUCKET → s3:GetObject on artifacts/*",
            f"bucket {env.get('MDP_ARTIFACT_BUCKET')} (output {outputs.ARTIFACT_BUCKET}) "
            f"and policy {policy} (ReadArtifacts)",
        ),
        (
            r"password authentication failed|connection.*failed",
            f"{HOST_ENV} MDP_DB_HOST/MDP_DB_PORT/MDP_DB_NAME + master secret → PostgreSQL login",
            f"output {outputs.DB_ENDPOINT}, secret {env.get('MDP_DB_SECRET_ARN')}",
        ),
    ]


def _replication_secret(host: HostRun) -> dict[str, Any]:
    arn = host.applied.resolve(str(host.run.outputs.get(outputs.DB_REPLICATION_SECRET_ARN, "")))
    client = host.emulator.client("secretsmanager", host.emulator.admin)
    return dict(json.loads(client.get_secret_value(SecretId=arn)["SecretString"]))


def check_reader(host: HostRun, database: StandInDatabase, db_name: str, logical: bool) -> None:
    """The replication user signs in with its secret's password and holds exactly what a sync needs."""
    step = "replication user: exactly the grants the sync needs"
    wire = "mdp-migrate.service → read-only replication user"
    behind = f"secret output {outputs.DB_REPLICATION_SECRET_ARN}, mdp_replication_user.py"
    try:
        reader = _replication_secret(host)
        user = reader["username"]
        with database.connect(db_name, user=user, password=reader["password"]) as conn:
            conn.execute("select 1")
        with database.superuser(db_name) as admin:
            problems = _grant_problems(admin, user, db_name, logical)
    except (psycopg.Error, KeyError, ValueError) as err:
        host.failed(step, f"{type(err).__name__}: {err}", wire, behind)
        return
    if problems:
        host.failed(step, "; ".join(problems), wire, behind)
    else:
        host.ok(
            step,
            f"{user} signs in with its secret; SELECT on every {SOURCE_SCHEMA} table, read-only, "
            "nothing else" + (", rds_replication" if logical else ""),
        )


def _grant_problems(admin: psycopg.Connection[Any], user: str, db: str, logical: bool) -> list[str]:
    problems: list[str] = []
    role = admin.execute(
        "select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
        "coalesce(rolconfig, '{}') from pg_roles where rolname = %s",
        (user,),
    ).fetchone()
    if role is None:
        return [f"role {user} does not exist"]
    if any(role[:5]):
        problems.append(f"{user} has a role attribute beyond login: {role[:5]}")
    if "default_transaction_read_only=on" not in role[5]:
        problems.append(f"{user} is not read-only by default")
    tables = {
        r[0]
        for r in admin.execute(
            "select tablename from pg_tables where schemaname = %s", (SOURCE_SCHEMA,)
        ).fetchall()
    }
    grants = {
        (r[0], r[1], r[2])
        for r in admin.execute(
            "select table_schema, table_name, privilege_type "
            "from information_schema.role_table_grants where grantee = %s",
            (user,),
        ).fetchall()
    }
    wanted = {(SOURCE_SCHEMA, t, "SELECT") for t in tables}
    if not tables:
        problems.append(f"schema {SOURCE_SCHEMA} holds no tables to check")
    if grants - wanted:
        problems.append(f"extra table privileges: {sorted(grants - wanted)}")
    if wanted - grants:
        problems.append(f"tables it cannot read: {sorted(t for _, t, _ in wanted - grants)}")
    checks = (
        admin.execute(
            "select has_schema_privilege(%(u)s, %(s)s, 'USAGE'), "
            "has_schema_privilege(%(u)s, %(s)s, 'CREATE'), "
            "has_database_privilege(%(u)s, %(d)s, 'CONNECT'), "
            "has_database_privilege(%(u)s, %(d)s, 'CREATE'), "
            "pg_has_role(%(u)s, 'rds_replication', 'member') "
            "  and exists (select 1 from pg_roles where rolname = 'rds_replication')",
            {"u": user, "s": SOURCE_SCHEMA, "d": db},
        ).fetchone()
        if logical
        else admin.execute(
            "select has_schema_privilege(%(u)s, %(s)s, 'USAGE'), "
            "has_schema_privilege(%(u)s, %(s)s, 'CREATE'), "
            "has_database_privilege(%(u)s, %(d)s, 'CONNECT'), "
            "has_database_privilege(%(u)s, %(d)s, 'CREATE'), false",
            {"u": user, "s": SOURCE_SCHEMA, "d": db},
        ).fetchone()
    )
    assert checks is not None
    usage, create, connect, db_create, replication = checks
    if not usage:
        problems.append(f"no USAGE on schema {SOURCE_SCHEMA}")
    if create:
        problems.append(f"CREATE on schema {SOURCE_SCHEMA}")
    if not connect:
        problems.append(f"no CONNECT on database {db}")
    if db_create:
        problems.append(f"CREATE on database {db}")
    if logical and not replication:
        problems.append("not a member of rds_replication (CDC needs it)")
    return problems


def check_cycle(
    host: HostRun, database: StandInDatabase, db_name: str, user: str, password: str
) -> None:
    """The cycle's rows are in the stand-in RDS, written by the master user."""
    step = "one generator cycle landed in the stand-in RDS"
    try:
        with database.connect(db_name, user=user, password=password) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "select tablename from pg_tables where schemaname = %s order by 1",
                    (SOURCE_SCHEMA,),
                ).fetchall()
            ]
            counts = {
                t: conn.execute(
                    sql.SQL("select count(*) from {}.{}").format(
                        sql.Identifier(SOURCE_SCHEMA), sql.Identifier(t)
                    )
                ).fetchone()[0]  # type: ignore[index]
                for t in tables
            }
    except psycopg.Error as err:
        host.failed(
            step, str(err), "mdp-generate → MDP_SOURCE_DSN", f"output {outputs.DB_ENDPOINT}"
        )
        return
    rows = sum(counts.values())
    if rows == 0:
        host.failed(step, "no rows in the source schema", "mdp-generate", "mdp-generator.service")
        return
    host.ok(step, f"{rows} rows in {len(tables)} tables")
