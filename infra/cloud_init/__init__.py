"""cloud-config documents for the hosts, rendered from stack outputs; they never hold a secret value."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FILES = Path(__file__).resolve().parent / "files"
UV_VERSION = "0.13.9"
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem"
# One cycle per timer tick: `mdp generate`, writing to MDP_SOURCE_DSN (libpq PG* variables carry the login).
GENERATOR_ARGS = "generate --cycles 1"
# The dashboard listens on loopback only; readers reach it through SSM port forwarding.
DASHBOARD_PORT = 8501
DASHBOARD_USER = "mdp-dashboard"
# Written at each start of the unit from Secrets Manager; /run is memory, gone at stop or reboot.
DASHBOARD_KEY_PATH = "/run/mdp/reporter.p8"
# The timer and script that restart the dashboard when its key's secret holds a new key.
DASHBOARD_KEY_CHECK = "mdp-dashboard-key-check"
# How often the host's dag-processor re-reads an unchanged DAG file. The DAG and the manifest it
# renders change only with a release, which restarts the processor, and a file whose modification
# time changes is re-read at once whatever this says. Airflow's default, 30 s, parses the file
# (Cosmos and the manifest) about 2,900 times a day for nothing.
DAG_REPARSE_SECONDS = 600


@dataclass(frozen=True)
class GeneratorBoot:
    """Everything the generator/bastion host needs at boot: names and ARNs, never secret values."""

    stack: str
    region: str
    db_host: str
    db_port: int
    db_name: str
    db_secret_arn: str
    replication_secret_arn: str
    logical_replication: bool
    artifact_bucket: str
    artifact_parameter: str
    on_calendar: str
    tunnel_user: str
    tunnel_public_key: str
    rows_per_cycle: int


@dataclass(frozen=True)
class DashboardBoot:
    """The dashboard's Snowflake sign-in: names and the ARN of its key's secret, never the key."""

    account: str
    user: str
    role: str
    warehouse: str
    database: str
    key_secret_arn: str


@dataclass(frozen=True)
class AirflowBoot:
    """Everything the Airflow host needs at boot: names and ARNs, never secret values."""

    stack: str
    region: str
    artifact_bucket: str
    artifact_parameter: str
    connections_prefix: str
    variables_prefix: str
    amazon_provider_version: str
    exports_target: str = ""
    connection_ids: tuple[str, ...] = ()
    variable_keys: tuple[str, ...] = ()
    swap_gb: int = 0
    dashboard: DashboardBoot | None = None
    raw_database: str = "RAW"


@dataclass(frozen=True)
class DashboardHostBoot:
    """The dashboard host of MWAA stacks: the artifact and the dashboard, nothing of Airflow."""

    stack: str
    region: str
    artifact_bucket: str
    artifact_parameter: str
    dashboard: DashboardBoot


def _exactly(names: tuple[str, ...]) -> str:
    """A regex matching exactly these ids; with none, one that matches no id at all."""
    return "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")$" if names else "^$"


SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"


def secrets_backend_kwargs(
    connections_prefix: str,
    connection_ids: tuple[str, ...],
    variables_prefix: str,
    variable_keys: tuple[str, ...],
    region: str,
) -> str:
    """The Secrets Manager backend's kwargs (JSON), the same for the EC2 host and MWAA."""
    return json.dumps(
        {
            "connections_prefix": connections_prefix,
            "connections_lookup_pattern": _exactly(connection_ids),
            "variables_prefix": variables_prefix,
            "variables_lookup_pattern": _exactly(variable_keys),
            "region_name": region,
        }
    )


def _file(name: str) -> str:
    return (FILES / name).read_text()


def _env_file(values: Mapping[str, object]) -> str:
    lines = [f"{k}={shlex.quote(str(v))}" for k, v in values.items()]
    return (
        "# Rendered by Pulumi from stack outputs: names and ARNs only, no secret values.\n"
        + "\n".join(lines)
        + "\n"
    )


def _write(path: str, content: str, mode: str = "0644") -> dict[str, Any]:
    return {"path": path, "content": content, "owner": "root:root", "permissions": mode}


def _document(doc: dict[str, Any]) -> str:
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False, width=1000)


def _common_files(region: str) -> list[dict[str, Any]]:
    return [
        _write("/usr/local/bin/mdp-sync-artifact", _file("mdp-sync-artifact.sh"), "0755"),
        _write("/etc/systemd/system/mdp-sync.service", _file("mdp-sync.service")),
        _write("/etc/systemd/system/mdp-sync.timer", _file("mdp-sync.timer")),
    ]


def _bootstrap_commands(region: str) -> list[list[str]]:
    return [
        ["python3.11", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
        ["ln", "-sf", "/usr/local/bin/uv", "/usr/bin/uv"],
        ["curl", "-fsSL", "-o", "/etc/mdp/rds-ca.pem", RDS_CA_URL.format(region=region)],
        ["mkdir", "-p", "/opt/mdp/releases"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "start", "mdp-sync.service"],
        ["systemctl", "enable", "--now", "mdp-sync.timer"],
    ]


def render_generator(boot: GeneratorBoot) -> str:
    """The generator/bastion host: the Airbyte SSH tunnel user, the artifact sync, the migration and the 2-hourly timer."""
    env = {
        "MDP_STACK": boot.stack,
        "AWS_REGION": boot.region,
        "MDP_DB_HOST": boot.db_host,
        "MDP_DB_PORT": boot.db_port,
        "MDP_DB_NAME": boot.db_name,
        "MDP_DB_SECRET_ARN": boot.db_secret_arn,
        "MDP_REPLICATION_SECRET_ARN": boot.replication_secret_arn,
        "MDP_LOGICAL_REPLICATION": "true" if boot.logical_replication else "false",
        "MDP_ARTIFACT_BUCKET": boot.artifact_bucket,
        "MDP_ARTIFACT_PARAMETER": boot.artifact_parameter,
        "MDP_GENERATOR_ARGS": GENERATOR_ARGS,
        "MDP_GENERATOR_ROWS_PER_CYCLE": boot.rows_per_cycle,
        "MDP_START_UNITS": "mdp-migrate.service",
        "PYTHONPATH": "/opt/mdp/app",
    }
    timer = (
        "[Unit]\nDescription=mdp: run the source generator on its schedule\n\n"
        f"[Timer]\nOnCalendar={boot.on_calendar}\nPersistent=true\nRandomizedDelaySec=120\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    # The tunnel key may only forward to the database: no shell, no other destination.
    tunnel_key = (
        f'restrict,port-forwarding,permitopen="{boot.db_host}:{boot.db_port}" '
        f"{boot.tunnel_public_key.strip()}"
    )
    sshd = (
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
        "AllowTcpForwarding no\nX11Forwarding no\n"
        f"Match User {boot.tunnel_user}\n  AllowTcpForwarding local\n"
        f"  PermitOpen {boot.db_host}:{boot.db_port}\n  PermitTTY no\n"
    )
    doc: dict[str, Any] = {
        "package_update": True,
        "packages": ["python3.11", "python3.11-pip", "jq", "unzip"],
        "users": [
            "default",
            {"name": "mdp", "system": True, "shell": "/sbin/nologin", "homedir": "/opt/mdp"},
            {
                "name": boot.tunnel_user,
                "shell": "/sbin/nologin",
                "lock_passwd": True,
                "ssh_authorized_keys": [tunnel_key],
            },
        ],
        "write_files": [
            _write("/etc/mdp/host.env", _env_file(env)),
            _write("/etc/ssh/sshd_config.d/50-mdp.conf", sshd, "0600"),
            *_common_files(boot.region),
            _write("/usr/local/bin/mdp-generate", _file("mdp-generate.sh"), "0755"),
            _write("/usr/local/lib/mdp/mdp_replication_user.py", _file("mdp_replication_user.py")),
            _write("/etc/systemd/system/mdp-migrate.service", _file("mdp-migrate.service")),
            _write("/etc/systemd/system/mdp-migrate.timer", _file("mdp-migrate.timer")),
            _write("/etc/systemd/system/mdp-generator.service", _file("mdp-generator.service")),
            _write("/etc/systemd/system/mdp-generator.timer", timer),
        ],
        "runcmd": [
            *_bootstrap_commands(boot.region),
            ["systemctl", "restart", "sshd"],
            ["systemctl", "start", "mdp-migrate.service"],
            ["systemctl", "enable", "--now", "mdp-migrate.timer"],
            ["systemctl", "enable", "--now", "mdp-generator.timer"],
        ],
    }
    return _document(doc)


CLOUDWATCH_AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
CLOUDWATCH_AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"


def cloudwatch_agent_config() -> dict[str, Any]:
    """The root file system's used percent, with exactly the dimensions the disk alarm watches
    (InstanceId, path, fstype: no host name, no device)."""
    return {
        "agent": {"omit_hostname": True},
        "metrics": {
            "namespace": "CWAgent",
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "metrics_collected": {
                "disk": {
                    "measurement": ["used_percent"],
                    "resources": ["/"],
                    "drop_device": True,
                    "metrics_collection_interval": 60,
                }
            },
        },
    }


def render_airflow(boot: AirflowBoot) -> str:
    """The Airflow host: pinned Airflow/Cosmos/dbt from uv.lock, Secrets Manager as the secrets backend."""
    env = {
        "MDP_STACK": boot.stack,
        "AWS_REGION": boot.region,
        "MDP_ARTIFACT_BUCKET": boot.artifact_bucket,
        "MDP_ARTIFACT_PARAMETER": boot.artifact_parameter,
        "MDP_EXTRA_REQUIREMENTS": f"apache-airflow-providers-amazon=={boot.amazon_provider_version}",
        # Cosmos renders the DAG from a manifest built once per release, never `dbt ls` at parse time.
        "MDP_BUILD_COMMAND": "-m orchestration.include.dbt",
        "PYTHONPATH": "/opt/mdp/app",
        "MDP_RESTART_UNITS": "airflow@scheduler airflow@dag-processor airflow@triggerer airflow@api-server"
        + (" mdp-dashboard" if boot.dashboard else ""),
    }
    # The role may read only the secrets this program wrote, so Airflow asks Secrets Manager
    # for exactly those ids; any other id goes to the environment and the metadata database.
    backend_kwargs = secrets_backend_kwargs(
        boot.connections_prefix,
        boot.connection_ids,
        boot.variables_prefix,
        boot.variable_keys,
        boot.region,
    )
    airflow_env = {
        "AIRFLOW_HOME": "/var/lib/airflow",
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/mdp/app/orchestration/dags",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(DAG_REPARSE_SECONDS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://airflow@/airflow?host=/run/postgresql",
        # Unset, Airflow derives postgresql+asyncpg for its async engine, and asyncpg is not in
        # uv.lock: every Airflow process would fail at import. psycopg 3 serves both engines.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "postgresql+psycopg://airflow@/airflow?host=/run/postgresql",
        "AIRFLOW__SECRETS__BACKEND": SECRETS_BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": backend_kwargs,
        # No inbound rule exists; the UI is reached through an SSM port-forwarding session.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "8080",
        "MDP_DBT_PROJECT_DIR": "/opt/mdp/app/transform",
        # dbt's sources read the stack's RAW database (name-prefixed in a shared account).
        "MDP_RAW_DATABASE": boot.raw_database,
        "MDP_HOME": "/var/lib/mdp",
        # The DAG's export task writes the Parquet exports here (the role may write only this prefix).
        "MDP_EXPORTS_TARGET": boot.exports_target,
        # The DAG's cloud target: Airbyte Cloud sync, dbt on Snowflake through Cosmos.
        "MDP_TARGET": "cloud",
    }
    doc: dict[str, Any] = {
        "package_update": True,
        "packages": [
            "python3.11",
            "python3.11-pip",
            "unzip",
            "postgresql16-server",
            "jq",
            # Publishes the root disk's used percent, which the disk-full alarm watches.
            "amazon-cloudwatch-agent",
        ],
        "users": [
            "default",
            {
                "name": "airflow",
                "system": True,
                "shell": "/sbin/nologin",
                "homedir": "/var/lib/airflow",
            },
        ],
        "write_files": [
            _write("/etc/mdp/host.env", _env_file(env)),
            _write("/etc/mdp/airflow.env", _env_file(airflow_env)),
            *_common_files(boot.region),
            _write("/usr/local/bin/mdp-airflow-setup", _file("airflow-setup.sh"), "0755"),
            _write("/etc/systemd/system/airflow@.service", _file("airflow@.service")),
            _write(CLOUDWATCH_AGENT_CONFIG, json.dumps(cloudwatch_agent_config(), indent=2)),
        ],
        "runcmd": [
            *_bootstrap_commands(boot.region),
            [
                CLOUDWATCH_AGENT_CTL,
                *("-a", "fetch-config", "-m", "ec2", "-s", "-c", f"file:{CLOUDWATCH_AGENT_CONFIG}"),
            ],
            ["/usr/local/bin/mdp-airflow-setup"],
        ],
    }
    if boot.dashboard is not None:
        _add_dashboard(doc, boot.dashboard)
    if boot.swap_gb:
        # A small dev host rides out the peaks of a daily run on swap instead of a larger size.
        doc["swap"] = {"filename": "/swapfile", "size": boot.swap_gb * 1024**3}
    return _document(doc)


def render_dashboard(boot: DashboardHostBoot) -> str:
    """The dashboard host: the artifact sync and the same dashboard unit and key script as the Airflow host."""
    env = {
        "MDP_STACK": boot.stack,
        "AWS_REGION": boot.region,
        "MDP_ARTIFACT_BUCKET": boot.artifact_bucket,
        "MDP_ARTIFACT_PARAMETER": boot.artifact_parameter,
        "PYTHONPATH": "/opt/mdp/app",
        "MDP_RESTART_UNITS": "mdp-dashboard",
    }
    doc: dict[str, Any] = {
        "package_update": True,
        "packages": ["python3.11", "python3.11-pip", "unzip", "jq"],
        "users": ["default"],
        "write_files": [_write("/etc/mdp/host.env", _env_file(env)), *_common_files(boot.region)],
        "runcmd": _bootstrap_commands(boot.region),
    }
    _add_dashboard(doc, boot.dashboard)
    return _document(doc)


def _add_dashboard(doc: dict[str, Any], dashboard: DashboardBoot) -> None:
    """The dashboard unit, reading Snowflake as the reporting user with a key fetched at start."""
    env = {
        "MDP_TARGET": "cloud",
        "MDP_SNOWFLAKE_ACCOUNT": dashboard.account,
        "MDP_SNOWFLAKE_USER": dashboard.user,
        "MDP_SNOWFLAKE_ROLE": dashboard.role,
        "MDP_SNOWFLAKE_WAREHOUSE": dashboard.warehouse,
        "MDP_SNOWFLAKE_DATABASE": dashboard.database,
        "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": DASHBOARD_KEY_PATH,
        "MDP_DASHBOARD_KEY_SECRET_ARN": dashboard.key_secret_arn,
    }
    doc["users"].append(
        {
            "name": DASHBOARD_USER,
            "system": True,
            "shell": "/sbin/nologin",
            "homedir": f"/var/lib/{DASHBOARD_USER}",
        }
    )
    doc["write_files"] += [
        _write("/etc/mdp/dashboard.env", _env_file(env)),
        _write("/usr/local/bin/mdp-dashboard-key", _file("mdp-dashboard-key.sh"), "0755"),
        _write("/etc/systemd/system/mdp-dashboard.service", _file("mdp-dashboard.service")),
        # A key rotation writes a new version of the secret and no new artifact: this timer
        # restarts the dashboard on the new key, long before the next rotation removes the old.
        _write(f"/usr/local/bin/{DASHBOARD_KEY_CHECK}", _file(f"{DASHBOARD_KEY_CHECK}.sh"), "0755"),
        _write(
            f"/etc/systemd/system/{DASHBOARD_KEY_CHECK}.service",
            _file(f"{DASHBOARD_KEY_CHECK}.service"),
        ),
        _write(
            f"/etc/systemd/system/{DASHBOARD_KEY_CHECK}.timer",
            _file(f"{DASHBOARD_KEY_CHECK}.timer"),
        ),
    ]
    doc["runcmd"] += [
        ["systemctl", "enable", "--now", "mdp-dashboard.service"],
        ["systemctl", "enable", "--now", f"{DASHBOARD_KEY_CHECK}.timer"],
    ]
