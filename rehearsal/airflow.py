"""The Airflow host: artifact from S3, Airflow's secrets from Secrets Manager, exports to S3, the dashboard key."""

from __future__ import annotations

import json
from pathlib import Path
from secrets import token_urlsafe
from typing import TYPE_CHECKING

from infra import outputs
from infra.cloud_init import DASHBOARD_KEY_CHECK
from infra.mockrun import ProgramRun
from rehearsal import airflow_setup
from rehearsal.apply import SECRET, SECRET_VERSION, Applied
from rehearsal.database import StandInDatabase
from rehearsal.hosts import Health, HostRun, written_files
from rehearsal.sandbox import CommandFailed, read_env_file
from rehearsal.wires import AIRFLOW_WIRES, artifact_hints

if TYPE_CHECKING:
    from rehearsal.standins import CloudStandIns

HOST_ENV = "/etc/mdp/host.env"
AIRFLOW_ENV = "/etc/mdp/airflow.env"
DASHBOARD_ENV = "/etc/mdp/dashboard.env"
APP = "/opt/mdp/app"
KEYS_ENV = "/etc/mdp/airflow-keys.env"
UNIT_FILE = "/etc/systemd/system/airflow@.service"

# Airflow 3's API server answers its health check on its port; the scheduler, dag-processor and
# triggerer must keep running. Streamlit answers its own on the dashboard's port.
AIRFLOW_HEALTH = {
    "airflow@api-server.service": Health("/api/v2/monitor/health", port_env="AIRFLOW__API__PORT")
}
DASHBOARD_HEALTH = {"mdp-dashboard.service": Health("/_stcore/health", port_option="--port")}

# Run by the release's own Python with the host's Airflow environment: Airflow resolves each
# variable and connection through its configured secrets backend, as a task would.
SECRETS_PROBE = """
import json, os, sys
from airflow.models.connection import Connection
from airflow.models.variable import Variable
want = json.loads(sys.argv[1])
assert not [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]
got = {"variables": {}, "connections": {}}
for key in want["variables"]:
    got["variables"][key] = Variable.get(key)
for conn_id in want["connections"]:
    got["connections"][conn_id] = Connection.get_connection_from_secrets(conn_id).conn_type
print(json.dumps(got))
"""

# The export writer with the host's target and role: one small table in, read back.
EXPORT_PROBE = """
import json
import pyarrow as pa
import pyarrow.dataset as ds
from exports.writer import export_table, resolve_target
fs, base, shown = resolve_target(None)
table = pa.table({"plan_name": ["Basic", "Pro"], "net_revenue": [10.5, 99.0]})
export_table(fs, base, "rehearsal_probe", table, source="rehearsal")
back = ds.dataset(f"{base}/rehearsal_probe", filesystem=fs, format="parquet", partitioning="hive")
rows = sorted(zip(*(back.to_table().column(c).to_pylist() for c in ("plan_name", "net_revenue"))))
want = sorted(zip(table.column("plan_name").to_pylist(), table.column("net_revenue").to_pylist()))
import exports.writer as writer
print(json.dumps({"target": shown, "equal": rows == want, "rows": len(rows), "code": writer.__file__}))
"""


def rehearse_airflow(
    host: HostRun, database: StandInDatabase, cloud: CloudStandIns | None = None
) -> None:
    """Boot the Airflow host; `cloud` (Snowflake and Airbyte stand-ins) serves its daily run."""
    host.check_wires(AIRFLOW_WIRES)
    files = written_files(host.user_data)
    backend = json.loads(read_env_file(files[AIRFLOW_ENV])["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    _hints(host, read_env_file(files[HOST_ENV]))
    host.health = {**AIRFLOW_HEALTH, **DASHBOARD_HEALTH}
    box = host.boot()
    if box is None:
        return
    metadata = airflow_setup.prepare(host, database)
    if metadata is None:
        return

    def setup(argv: list[str]) -> bool:
        return airflow_setup.run_setup(host, database, metadata, argv)

    healthy = host.runcmd({airflow_setup.SETUP: setup})
    if not healthy:
        return
    check_secrets_backend(host, backend)
    check_exports(host)
    check_dashboard_key(host, files)
    run_daily(host, database, backend["connections_prefix"], cloud)


def run_daily(
    host: HostRun, database: StandInDatabase, prefix: str, cloud: CloudStandIns | None
) -> None:
    """One daily run of the cloud DAG, when the stack declares what it needs and all above passed."""
    from rehearsal import daily_run

    stack = daily_run.declared(host, prefix)
    if isinstance(stack, str):
        host.skipped(daily_run.STEP, stack)
        return
    if any(s.host == host.name for s in host.report.failures):
        host.skipped(daily_run.STEP, "not run: a step above failed")
        return
    assert host.box is not None
    env, python, app = _host_process_env(host), _python(host), host.box.path(APP)
    if cloud is not None:
        daily_run.rehearse_daily_run(host, database, cloud, stack, env, python, app)
        return
    from rehearsal.standins import cloud_stand_ins

    with cloud_stand_ins() as own:
        daily_run.rehearse_daily_run(host, database, own, stack, env, python, app)


def _host_process_env(host: HostRun) -> dict[str, str]:
    assert host.box is not None
    env = host.box.base_env()
    env.update(host.box.env_file(HOST_ENV))
    env.update(host.box.env_file(AIRFLOW_ENV))
    return env


def _python(host: HostRun) -> str:
    assert host.box is not None
    return str(host.box.path(f"{APP}/.venv/bin/python"))


def declared_backend_entries(run: ProgramRun, applied: Applied, prefix: str) -> dict[str, str]:
    """Secret name under `prefix` → the value the program wrote (resolved to the emulator's ids)."""
    secrets = {r.id: r.plain["name"] for r in run.of_type(SECRET)}
    entries: dict[str, str] = {}
    for version in run.of_type(SECRET_VERSION):
        name = secrets.get(version.plain["secretId"], "")
        if name.startswith(f"{prefix}/"):
            entries[name.removeprefix(f"{prefix}/")] = applied.resolve(
                version.plain["secretString"]
            )
    return entries


def backend_misreads(
    variables: dict[str, str], connections: dict[str, str], got: dict[str, dict[str, str]]
) -> list[str]:
    """The entries Airflow read otherwise than the program wrote them (connections by type)."""
    wrong = [k for k, v in variables.items() if got["variables"].get(k) != v]
    return wrong + [
        k
        for k, v in connections.items()
        if got["connections"].get(k) != json.loads(v).get("conn_type")
    ]


def check_secrets_backend(host: HostRun, backend: dict[str, str]) -> None:
    """Airflow, configured as the host configures it, reads its variables and connections."""
    assert host.box is not None
    step = "Airflow secrets backend: every variable and connection from Secrets Manager"
    variables = declared_backend_entries(host.run, host.applied, backend["variables_prefix"])
    connections = declared_backend_entries(host.run, host.applied, backend["connections_prefix"])
    want = {"variables": sorted(variables), "connections": sorted(connections)}
    try:
        result = host.box.run(
            [_python(host), "-c", SECRETS_PROBE, json.dumps(want)],
            f"{step}",
            env=_host_process_env(host),
            cwd=host.box.path(APP),
        )
    except CommandFailed as err:
        wire, behind = host.diagnose(f"secrets backend\n{err.output}")
        lines = [x for x in err.output.strip().splitlines() if x.strip()]
        host.failed(step, " | ".join(lines[-3:]), wire, behind)
        return
    got = json.loads(result.stdout.strip().splitlines()[-1])
    wrong = backend_misreads(variables, connections, got)
    if wrong:
        host.failed(
            step,
            f"Airflow read other values than the program wrote for {wrong}",
            f"{AIRFLOW_ENV} AIRFLOW__SECRETS__BACKEND_KWARGS → Secrets Manager",
            "the airflow-*-value secret versions",
        )
        return
    host.ok(
        step,
        f"{len(variables)} variables, {len(connections)} connections; no AIRFLOW_CONN_*/AIRFLOW_VAR_*",
    )


def check_exports(host: HostRun) -> None:
    """The export writer, with the host's target and its role, writes Parquet to S3 and reads it back."""
    assert host.box is not None
    step = "exports: Parquet to MDP_EXPORTS_TARGET and read back"
    env = _host_process_env(host)
    env["MDP_EXPORTS_S3_ENDPOINT"] = host.emulator.endpoint
    try:
        result = host.box.run(
            [_python(host), "-c", EXPORT_PROBE], step, env=env, cwd=host.box.path(APP)
        )
    except CommandFailed as err:
        lines = [x for x in err.output.strip().splitlines() if x.strip()]
        host.failed(
            step,
            " | ".join(lines[-3:]),
            f"{AIRFLOW_ENV} MDP_EXPORTS_TARGET → s3:PutObject/GetObject on exports/*",
            f"output {outputs.EXPORTS_BUCKET} and policy {host.policy_name} (WriteParquetExports)",
        )
        return
    got = json.loads(result.stdout.strip().splitlines()[-1])
    if not got["equal"]:
        host.failed(step, "the Parquet read back differs", "exports", outputs.EXPORTS_BUCKET)
        return
    host.ok(step, f"{got['rows']} rows at {got['target']}/rehearsal_probe (a probe table)")


def check_dashboard_key(host: HostRun, files: dict[str, str]) -> None:
    assert host.box is not None
    step = "dashboard key script fetches its key"
    if DASHBOARD_ENV not in files:
        host.skipped(step, "the stack has no dashboard (no Snowflake dashboard user)")
        return
    key_path = read_env_file(files[DASHBOARD_ENV])["MDP_SNOWFLAKE_PRIVATE_KEY_PATH"]
    key = host.box.path(key_path)
    if "mdp-dashboard.service" not in host.ran or not key.exists():
        host.failed(
            step,
            f"no key at {key_path}",
            f"{DASHBOARD_ENV} MDP_DASHBOARD_KEY_SECRET_ARN → secretsmanager:GetSecretValue",
            f"output {outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN}",
        )
        return
    ok = "BEGIN PRIVATE KEY" in key.read_text() and (key.stat().st_mode & 0o077) == 0
    if ok:
        host.ok(step, f"{key_path}, owner-only")
        check_key_rotation(host)
    else:
        host.failed(step, "the key file is not an owner-only PKCS#8 key", "dashboard key", key_path)


def check_key_rotation(host: HostRun) -> None:
    """A rotation's `pulumi up` writes a new version of the key's secret and no new artifact:
    the host's check, with its own role, restarts the dashboard, whose start fetches that key."""
    assert host.box is not None
    box = host.box
    step = "key rotation: a new key in the secret restarts the dashboard on it"
    check = f"{DASHBOARD_KEY_CHECK}.service"
    wire = f"{DASHBOARD_KEY_CHECK}.timer → systemctl try-restart mdp-dashboard.service"
    script = f"/usr/local/bin/{DASHBOARD_KEY_CHECK}"
    # Its first run at boot found the key the dashboard had just fetched: nothing to restart.
    steps = [s.name for s in host.report.steps if s.host == host.name]
    enabled = f"systemctl enable --now {DASHBOARD_KEY_CHECK}.timer"
    first = next((i for i, name in enumerate(steps) if name.startswith(enabled)), None)
    if first is None:
        host.failed(step, f"the user data never runs `{enabled}`", wire, "the user data's runcmd")
        return
    at_boot = [n for n in steps[first:] if n.startswith("→ systemctl try-restart mdp-dashboard")]
    if at_boot:
        host.failed(step, f"at boot, with the key unchanged: {at_boot[0]}", wire, script)
        return
    env = box.env_file(DASHBOARD_ENV)
    key = Path(env["MDP_SNOWFLAKE_PRIVATE_KEY_PATH"])
    deployer = host.emulator.client("secretsmanager", host.emulator.admin)
    arn = env["MDP_DASHBOARD_KEY_SECRET_ARN"]
    value = json.loads(deployer.get_secret_value(SecretId=arn)["SecretString"])
    # A stand-in for the next generation's key, marked PKCS#8 as the program's keys are.
    new_key = "-----" + "BEGIN PRIVATE KEY-----" + token_urlsafe(48) + "-----END PRIVATE KEY-----"
    version = deployer.put_secret_value(
        SecretId=arn, SecretString=json.dumps(value | {"private_key": new_key})
    )["VersionId"]
    box.systemctl_log.unlink(missing_ok=True)
    try:
        box.run_unit(check)
        calls = box.systemctl_calls()
        box.systemctl_log.unlink(missing_ok=True)
        if ["try-restart", "mdp-dashboard.service"] not in calls:
            host.failed(
                step,
                f"the secret's new version {version} asked systemctl for {calls or 'nothing'}",
                wire,
                script,
            )
            return
        # systemd restarts the unit: its ExecStartPre fetches the key again.
        box.run_unit("mdp-dashboard.service")
    except CommandFailed as err:
        wire, behind = host.diagnose(f"{err.what}\n{err.output}")
        lines = [x for x in err.output.strip().splitlines() if x.strip()]
        host.failed(step, " | ".join(lines[-3:]), wire, behind)
        return
    if key.read_text().strip() != new_key:
        host.failed(step, f"after the restart {key} does not hold the new key", wire, script)
        return
    host.ok(
        step,
        f"version {version[:8]}…: {check} asked for try-restart mdp-dashboard.service, "
        "whose start fetched the new key",
    )


def _hints(host: HostRun, env: dict[str, str]) -> None:
    policy = host.policy_name
    host.hints = [
        (
            r"(?s)secrets backend.*(AccessDenied|not authorized|GetSecretValue)",
            f"{AIRFLOW_ENV} AIRFLOW__SECRETS__BACKEND(_KWARGS) → secretsmanager:GetSecretValue "
            "on the Airflow connection and variable secrets",
            f"policy {policy} (ReadAirflowSecrets) and the airflow-connection-*/airflow-variable-* secrets",
        ),
        *artifact_hints(env, policy),
        (
            r"mdp-dashboard-key",
            f"{DASHBOARD_ENV} MDP_DASHBOARD_KEY_SECRET_ARN → secretsmanager:GetSecretValue",
            f"output {outputs.SNOWFLAKE_DASHBOARD_KEY_SECRET_ARN} and policy {policy} (ReadDashboardKey)",
        ),
        (
            r"(?s)(mdp-airflow-setup|airflow@).*(OperationalError|connection to server|"
            r"could not connect|authentication failed|does not exist)",
            f"{AIRFLOW_ENV} AIRFLOW__DATABASE__SQL_ALCHEMY_CONN → the host's PostgreSQL "
            "(the role and database the setup creates)",
            f"{airflow_setup.SETUP} and {AIRFLOW_ENV}",
        ),
        (
            r"airflow@api-server",
            f"{AIRFLOW_ENV} AIRFLOW__API__* and {KEYS_ENV} → airflow api-server",
            f"{UNIT_FILE} and the release's Airflow",
        ),
        (
            r"airflow@",
            f"{AIRFLOW_ENV} and {KEYS_ENV} → the Airflow unit's ExecStart",
            f"{UNIT_FILE} and the release's Airflow",
        ),
        DASHBOARD_START_HINT,
    ]


# The dashboard's own start, after its key was fetched: the release's app on its port.
DASHBOARD_START_HINT = (
    r"mdp-dashboard\.service: ExecStart",
    f"{DASHBOARD_ENV} and {HOST_ENV} → mdp-dashboard.service ExecStart (mdp dashboard)",
    "/etc/systemd/system/mdp-dashboard.service and the release's dashboard app",
)
