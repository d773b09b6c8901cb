"""The Airflow host's daily run of the cloud DAG, against Snowflake and Airbyte Cloud stand-ins.

What the program declared for Snowflake (its databases and schemas) and for Airbyte (the
source, destination and connection, under the connection id the stack exports) is applied to
fakesnow and the fake Airbyte API. The Airflow connections the stack wrote to Secrets Manager
get one new version each, in which only where the service listens changes. The release's own
Airflow, configured by the host's environment file, then runs one day of the DAG with
`dag.test()`: it reads its connections and variables through the Secrets Manager backend,
triggers the sync, runs dbt against fakesnow, and exports the marts to the exports bucket.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.parquet as pq
from psycopg.conninfo import make_conninfo

from core.connections import AIRBYTE_CONN_ID, AIRBYTE_CONNECTION_ID_VARIABLE, SNOWFLAKE_CONN_ID
from core.warehouse import CONTRACT_MARTS
from infra import outputs
from rehearsal.apply import SECRET
from rehearsal.database import StandInDatabase
from rehearsal.hosts import HostRun
from rehearsal.keys import throwaway_pem
from rehearsal.sandbox import CommandFailed
from rehearsal.standins import CloudStandIns, SnowflakeSync

STEP = "daily run of the cloud DAG (dag.test)"
SOURCE = "pulumi-python:dynamic/airbyte:PostgresSource"
DESTINATION = "pulumi-python:dynamic/airbyte:SnowflakeDestination"
CONNECTION = "pulumi-python:dynamic/airbyte:Connection"
SNOWFLAKE_DATABASE = "snowflake:index/database:Database"
SNOWFLAKE_SCHEMA = "snowflake:index/schema:Schema"
# What the rehearsal changes in the DAG's deployed settings, and why.
RUN_SETTINGS = {
    # The sensor's trigger polls the job every second instead of every minute.
    "MDP_AIRBYTE_POLL_SECONDS": "1",
    # dbt-snowflake runs unit tests through CREATE TEMPORARY TABLE <db>.<schema>.<name>, which
    # fakesnow cannot emulate; the DuckDB build runs them (transform/README.md).
    "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
    # A failure shows at once instead of after the retries' delay.
    "MDP_DAG_RETRIES": "0",
}
# The exported tables: the FINANCE marts the contract checks, and the payments fact.
EXPORTED = {
    **{m: f"FINANCE.{m}" for m in CONTRACT_MARTS},
    "fct_payments": "INTERMEDIATE.FCT_PAYMENTS",
}


@dataclass(frozen=True)
class Declared:
    """What the daily run needs from the stack: the Airflow entries, Airbyte's three resources."""

    connections: dict[str, str]  # Airflow connection id → its Secrets Manager name
    connection_id: str  # the Airbyte connection the DAG syncs (a stack output)
    source: dict[str, Any]
    destination: dict[str, Any]
    connection_name: str
    databases: list[str]
    schemas: list[tuple[str, str]]
    analytics_database: str  # where dbt builds the marts (a stack output)


def declared(host: HostRun, connections_prefix: str) -> Declared | str:
    """What the program declared for the run, or why the stack cannot run it."""
    names = {
        r.plain["name"].removeprefix(f"{connections_prefix}/"): r.plain["name"]
        for r in host.run.of_type(SECRET)
        if str(r.plain.get("name", "")).startswith(f"{connections_prefix}/")
    }
    missing = [c for c in (SNOWFLAKE_CONN_ID, AIRBYTE_CONN_ID) if c not in names]
    if missing:
        return (
            f"the stack declares no Airflow connection {' or '.join(missing)} "
            "(mdp:snowflake, mdp:airbyte and airbyte:clientId unset)"
        )
    connection = host.run.one(CONNECTION)
    connection_id = str(host.run.outputs.get(outputs.AIRBYTE_CONNECTION_ID) or "")
    if not connection_id:
        return f"the stack exports no {outputs.AIRBYTE_CONNECTION_ID}"
    return Declared(
        connections=names,
        connection_id=connection_id,
        source=dict(host.run.one(SOURCE).plain),
        destination=dict(host.run.one(DESTINATION).plain),
        connection_name=str(connection.plain["name"]),
        databases=[str(r.plain["name"]) for r in host.run.of_type(SNOWFLAKE_DATABASE)],
        schemas=[
            (str(r.plain["database"]), str(r.plain["name"]))
            for r in host.run.of_type(SNOWFLAKE_SCHEMA)
        ],
        analytics_database=str(host.run.outputs[outputs.SNOWFLAKE_ANALYTICS_DATABASE]),
    )


def rehearse_daily_run(
    host: HostRun,
    database: StandInDatabase,
    cloud: CloudStandIns,
    stack: Declared,
    env: dict[str, str],
    python: str,
    app: Path,
) -> None:
    """Apply the declarations to the stand-ins, point the connections at them, run one day."""
    assert host.box is not None
    dropped = _apply_snowflake(cloud, stack)
    sync = _apply_airbyte(host, database, cloud, stack)
    changed = _point_connections_at_stand_ins(host, cloud, stack)
    host.ok(
        "stand-ins: fakesnow and the fake Airbyte API on 127.0.0.1",
        f"{len(stack.databases)} databases and {len(stack.schemas)} schemas as declared, empty"
        + (f" ({dropped} schemas of an earlier run dropped)" if dropped else "")
        + "; "
        + f"Airbyte connection {stack.connection_id} ({outputs.AIRBYTE_CONNECTION_ID}) reading "
        f"database {stack.source['database']} as {stack.source['username']}; " + "; ".join(changed),
    )
    host.skipped(
        "Snowflake and Airbyte Cloud themselves",
        "fakesnow stands in for the account (no roles, grants, warehouses or key-pair "
        "authentication), the fake API for Airbyte Cloud (its sync is the project's loader, "
        "without the SSH tunnel through the bastion)",
    )
    logical_date = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    log = host.root / "daily-run.log"
    run_env = env | RUN_SETTINGS | {"MDP_EXPORTS_S3_ENDPOINT": host.emulator.endpoint}
    argv = [python, "-m", "orchestration.include.runner", logical_date.isoformat(), str(log)]
    try:
        stdout = host.box.run(argv, STEP, env=run_env, cwd=app).stdout
    except CommandFailed as err:
        # Exit 1: the run ended and failed, its task states printed; anything else: no run.
        if err.result.returncode != 1 or not err.result.stdout.strip():
            lines = [x for x in err.output.strip().splitlines() if x.strip()]
            _failed(host, " | ".join(lines[-3:]), sync)
            return
        stdout = err.result.stdout
    run = json.loads(stdout.strip().splitlines()[-1])
    tasks: dict[str, str] = run["tasks"]
    if run["state"] != "success" or set(tasks.values()) != {"success"}:
        not_ok = {t: s for t, s in tasks.items() if s != "success"}
        _failed(host, f"run {run['state']}: {not_ok} | {_errors(log)}", sync)
        return
    marts = {name: _count(cloud, stack, table) for name, table in EXPORTED.items()}
    host.ok(
        STEP,
        f"{len(tasks)} tasks succeeded in {run['seconds']:.0f} s ({len(sync.synced)} sync); "
        + ", ".join(f"{m} {n} rows" for m, n in marts.items())
        + f"; settings changed for the run: {', '.join(f'{k}={v}' for k, v in RUN_SETTINGS.items())}",
    )
    _check_exports(host, env, marts)


def _apply_snowflake(cloud: CloudStandIns, stack: Declared) -> int:
    """The declared databases and schemas, empty as in a new account; the schemas dropped."""
    dropped = sum(cloud.empty_database(name) for name in stack.databases)
    for db, schema in stack.schemas:
        cloud.query(f"create schema if not exists {db}.{schema}")
    return dropped


def _apply_airbyte(
    host: HostRun, database: StandInDatabase, cloud: CloudStandIns, stack: Declared
) -> SnowflakeSync:
    """The declared connection in the fake API; its sync reads the stand-in RDS as declared.

    Only the host and port the source names move to the stand-in's socket; the database, user,
    password and TLS mode stay as declared (libpq uses no TLS over a unix socket).
    """
    source = stack.source
    dsn = make_conninfo(
        host=database.socket_dir,
        port=database.port,
        dbname=source["database"],
        user=source["username"],
        password=source["password"],
        sslmode=source.get("ssl_mode") or "prefer",
    )
    # A connection Airbyte just created has no sync state yet.
    state = cloud.home / f"{host.run.stack}-{stack.connection_id}-{uuid.uuid4().hex[:8]}"
    sync = SnowflakeSync(
        dsn,
        state / "raw.duckdb",
        cloud.snowflake,
        stack.destination["database"],
    )
    cloud.airbyte.sync = sync
    cloud.airbyte.add_connection(
        stack.connection_name,
        connection_id=stack.connection_id,
        source={k: v for k, v in source.items() if not k.startswith("__")},
        destination={k: v for k, v in stack.destination.items() if not k.startswith("__")},
    )
    return sync


def _point_connections_at_stand_ins(
    host: HostRun, cloud: CloudStandIns, stack: Declared
) -> list[str]:
    """A new version of each connection secret, as the deployer: only where the service listens.

    The mocks' private key is no key, so the Snowflake connection gets a throwaway one, which
    fakesnow does not check. The fake API accepts the client the stack wrote.
    """
    deployer = host.emulator.client("secretsmanager", host.emulator.admin)
    changed = []
    for conn_id, name in sorted(stack.connections.items()):
        value = json.loads(deployer.get_secret_value(SecretId=name)["SecretString"])
        if conn_id == SNOWFLAKE_CONN_ID:
            value["extra"] |= {
                "host": cloud.snowflake["host"],
                "port": cloud.snowflake["port"],
                "protocol": cloud.snowflake["protocol"],
                "private_key_content": base64.b64encode(throwaway_pem().encode()).decode(),
            }
            changed.append(f"{conn_id}: extra host, port, protocol (and a throwaway key)")
        elif conn_id == AIRBYTE_CONN_ID:
            cloud.airbyte.client_id = value["login"]
            cloud.airbyte.client_secret = value["password"]
            was = urlparse(value["host"]).netloc
            value["host"] = f"{cloud.airbyte.url}/"
            value["schema"] = f"{cloud.airbyte.url}/applications/token"
            changed.append(f"{conn_id}: host and token URL ({was} → 127.0.0.1)")
        else:
            continue
        deployer.put_secret_value(SecretId=name, SecretString=json.dumps(value))
    return changed


def _count(cloud: CloudStandIns, stack: Declared, table: str) -> int:
    ((rows,),) = cloud.query(f"select count(*) from {stack.analytics_database}.{table}")
    return int(rows)


def _check_exports(host: HostRun, env: dict[str, str], marts: dict[str, int]) -> None:
    """The DAG's publish task wrote each table to the exports bucket: read it back, count it."""
    step = "exports: the DAG's Parquet in the exports bucket, read back"
    target = urlparse(env["MDP_EXPORTS_TARGET"])
    bucket, prefix = target.netloc, target.path.strip("/")
    s3 = host.emulator.client("s3", host.emulator.admin)
    found: dict[str, int] = {}
    files = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            table = key.removeprefix(prefix).strip("/").split("/")[0]
            if table not in marts or not key.endswith(".parquet"):
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            found[table] = found.get(table, 0) + pq.read_metadata(io.BytesIO(body)).num_rows
            files += 1
    wrong = {t: (found.get(t, 0), n) for t, n in marts.items() if found.get(t, 0) != n}
    if wrong:
        host.failed(
            step,
            "rows exported against rows in Snowflake: "
            + ", ".join(f"{t} {a} ≠ {b}" for t, (a, b) in wrong.items()),
            "MDP_EXPORTS_TARGET → the DAG's publish task (s3:PutObject on exports/*)",
            f"output {outputs.EXPORTS_BUCKET} and policy {host.policy_name} (WriteParquetExports)",
        )
        return
    host.ok(step, f"{files} files, every table's rows, at {env['MDP_EXPORTS_TARGET']}")


def _errors(log: Path) -> str:
    """The last error lines of the run's log, as the operator would look for them."""
    if not log.exists():
        return "no task log was written"
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines()]
    errors = [x for x in lines if "Error" in x or "error" in x or "FAIL" in x]
    return " | ".join((errors or lines)[-3:])


def _failed(host: HostRun, detail: str, sync: SnowflakeSync) -> None:
    wire = (
        f"the Airflow connections {SNOWFLAKE_CONN_ID} and {AIRBYTE_CONN_ID} and the variable "
        f"{AIRBYTE_CONNECTION_ID_VARIABLE} → the cloud DAG"
    )
    behind = "the airflow-connection-*/airflow-variable-* secrets and the release's DAG"
    for pattern, hint_wire, hint_behind in host.hints:
        if re.search(pattern, detail):
            wire, behind = hint_wire, hint_behind
            break
    host.failed(STEP, f"{detail} ({len(sync.synced)} syncs succeeded)", wire, behind)
