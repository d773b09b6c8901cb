"""The Airflow host's first-boot script, run as rendered, its own PostgreSQL served by the stand-in."""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from rehearsal.database import StandInDatabase
from rehearsal.hosts import HostRun, summary
from rehearsal.sandbox import CommandFailed, Sandbox

SETUP = "/usr/local/bin/mdp-airflow-setup"
AIRFLOW_ENV = "/etc/mdp/airflow.env"
# Written by postgresql-setup --initdb: a cluster already exists, as on a rebooted host.
PG_VERSION = "/var/lib/pgsql/data/PG_VERSION"
# The metadata database's connections: only their socket is moved to the stand-in.
METADATA_CONNS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
)
# The client programs the script calls as the postgres user: PostgreSQL 16's own, from pgserver.
PG_CLIENTS = ("psql", "createuser", "createdb")

NOT_REHEARSED = {
    "postgresql-setup": "the host's own cluster (package postgresql16-server) is not "
    "initialised: a database on the rehearsal's local PostgreSQL 16 stands in",
    "sudo": "no such users here: each command ran as the rehearsal's own user",
    "chown": "no such owner here (cloud-init's users create it): ownership not applied",
}
POSTGRESQL_UNIT = (
    "the host's own PostgreSQL server: the rehearsal's local PostgreSQL 16 serves the metadata "
    "database in its place, over its socket"
)


@dataclass(frozen=True)
class Metadata:
    """Airflow's metadata database as airflow.env names it."""

    database: str
    user: str


def prepare(host: HostRun, database: StandInDatabase) -> Metadata | None:
    """Before runcmd: the metadata database's socket moved to the stand-in, stand-ins on PATH."""
    assert host.box is not None
    box = host.box
    step = "airflow.env: the metadata database's socket → the stand-in's"
    env = box.env_file(AIRFLOW_ENV)
    conn = env.get(METADATA_CONNS[0], "")
    target = urlsplit(conn)
    user, name = target.username or "", target.path.lstrip("/")
    if not target.scheme.startswith("postgresql") or not user or not name:
        host.failed(
            step,
            f"{METADATA_CONNS[0]} names no PostgreSQL database and user: {conn or 'unset'}",
            f"{AIRFLOW_ENV} {METADATA_CONNS[0]}",
            "infra/cloud_init render_airflow",
        )
        return None
    try:
        _stand_ins(box, database)
    except FileNotFoundError as err:
        host.failed(step, str(err), "the PostgreSQL 16 client programs", "pgserver (uv.lock)")
        return None
    database.host_database(name, user, fresh=not box.path(PG_VERSION).exists())
    moved = {
        k: on_socket(env[k], database.socket_dir, database.port) for k in METADATA_CONNS if k in env
    }
    box.set_env_values(AIRFLOW_ENV, moved)
    host.ok(step, f"{', '.join(moved)}: database {name}, user {user} as rendered")
    host.skipped(
        f"peer authentication of the {user} OS user",
        f"the rehearsal runs as one OS user: the stand-in lets role {user} into database "
        f"{name} over its socket without a password, as peer authentication would",
    )
    host.package_units["postgresql"] = POSTGRESQL_UNIT
    return Metadata(name, user)


def on_socket(url: str, socket_dir: str, port: int) -> str:
    """`url` reaching its server at `socket_dir`; the user, database and other options kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
    query += [("host", socket_dir), ("port", str(port))]
    netloc = f"{userinfo}@" if userinfo else ""
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/"), ""))


def run_setup(
    host: HostRun, database: StandInDatabase, metadata: Metadata, argv: list[str]
) -> bool:
    """The script as rendered; then the metadata schema checked and the units it started run."""
    assert host.box is not None
    box = host.box
    text = " ".join(argv)
    box.stand_ins_log.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        box.run([box.jail(a) for a in argv], text)
    except CommandFailed as err:
        _report_stand_ins(host)
        wire, behind = host.diagnose(f"{err.what}\n{err.output}")
        host.failed(text, summary(err), wire, behind)
        return False
    host.ok(text, f"ran as rendered in {time.monotonic() - started:.1f} s")
    _report_stand_ins(host)
    healthy = check_metadata(host, database, metadata)
    return host.follow_systemctl() and healthy


def check_metadata(host: HostRun, database: StandInDatabase, metadata: Metadata) -> bool:
    """`airflow db migrate` left Airflow's schema in the database, owned by its user."""
    step = "airflow db migrate: the metadata schema on the stand-in"
    wire = f"{AIRFLOW_ENV} AIRFLOW__DATABASE__SQL_ALCHEMY_CONN → database {metadata.database}"
    try:
        with database.superuser(metadata.database) as conn:
            owner = conn.execute(
                "select pg_get_userbyid(datdba) from pg_database where datname = %s",
                (metadata.database,),
            ).fetchone()
            revision = conn.execute("select version_num from alembic_version").fetchone()
            tables = conn.execute(
                "select count(*) from pg_tables where schemaname = 'public' and tableowner = %s",
                (metadata.user,),
            ).fetchone()
    except psycopg.Error as err:
        host.failed(step, f"{type(err).__name__}: {err}", wire, SETUP)
        return False
    if (
        owner is None
        or owner[0] != metadata.user
        or revision is None
        or not tables
        or not tables[0]
    ):
        host.failed(
            step,
            f"owner {owner and owner[0]}, revision {revision and revision[0]}, "
            f"{tables and tables[0]} tables of {metadata.user}",
            wire,
            SETUP,
        )
        return False
    host.ok(
        step,
        f"database {metadata.database} owned by {metadata.user}: revision {revision[0]}, "
        f"{tables[0]} tables",
    )
    return True


def _report_stand_ins(host: HostRun) -> None:
    """One line per stand-in the script called, with what it was asked and why it stood in."""
    assert host.box is not None
    asked: dict[str, list[str]] = {}
    for command, args in host.box.stand_in_calls():
        args = host.box.unjail(args)
        seen = asked.setdefault(command, [])
        if args not in seen:
            seen.append(args)
    for command, calls in asked.items():
        why = NOT_REHEARSED.get(command, "a stand-in")
        host.skipped(f"stand-in {command}: {'; '.join(calls)}", why)
    host.box.stand_ins_log.unlink(missing_ok=True)


def _stand_ins(box: Sandbox, database: StandInDatabase) -> None:
    log = shlex.quote(str(box.stand_ins_log))
    pg_bin = StandInDatabase.client_bin()
    for program in PG_CLIENTS:
        real = pg_bin / program
        if not real.exists():
            raise FileNotFoundError(
                f"pgserver's bundle has no {program} at {real}; run `make install`"
            )
        box.stand_in(program, f'#!/bin/sh\nexec {shlex.quote(str(real))} "$@"\n')
    data = shlex.quote(str(box.path(PG_VERSION).parent))
    box.stand_in(
        "postgresql-setup",
        f"""#!/usr/bin/env bash
# Stand-in: the cluster's marker only, so a reboot of this sandbox skips --initdb as the host does.
set -euo pipefail
mkdir -p {data} && echo 16 > {data}/PG_VERSION
printf 'postgresql-setup\\t%s\\n' "$*" >> {log}
""",
    )
    # As the postgres OS user, psql reaches the host's server by its default socket as the
    # superuser: here, the stand-in's socket and superuser.
    postgres_env = " ".join(
        shlex.quote(f"{k}={v}")
        for k, v in {
            "PGHOST": database.socket_dir,
            "PGPORT": str(database.port),
            "PGUSER": database.superuser_name,
        }.items()
    )
    box.stand_in(
        "sudo",
        f"""#!/usr/bin/env bash
# Stand-in: runs the command as the rehearsal's own user; the environment as sudo passes it.
set -euo pipefail
user=root preserve=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -u) user="$2"; shift 2 ;;
    --user=*) user="${{1#--user=}}"; shift ;;
    -E|--preserve-env) preserve=1; shift ;;
    --) shift; break ;;
    -*) echo "sudo (rehearsal stand-in): option $1 is not handled; extend rehearsal/airflow_setup.py" >&2; exit 2 ;;
    *) break ;;
  esac
done
shown="${{1##*/}}"
for arg in "${{@:2}}"; do [[ $arg == -* ]] && break; shown+=" $arg"; done
printf 'sudo\\t-u %s %s\\n' "$user" "$shown" >> {log}
extra=()
if [[ $user == postgres ]]; then extra=({postgres_env}); fi
if [[ -z $preserve ]]; then
  # sudo resets the environment: the command sees PATH and the target's login only.
  exec env -i PATH="$PATH" HOME="$HOME" LANG="${{LANG:-C.UTF-8}}" USER="$user" LOGNAME="$user" \\
    ${{extra[@]+"${{extra[@]}}"}} "$@"
fi
exec env ${{extra[@]+"${{extra[@]}}"}} "$@"
""",
    )
    real_chown = shutil.which("chown", path="/usr/bin:/bin") or "/bin/chown"
    box.stand_in(
        "chown",
        f"""#!/usr/bin/env bash
# Stand-in: applies an ownership only to owners that exist here, as root; records the others.
set -euo pipefail
owner=""
for arg in "$@"; do [[ $arg == -* ]] || {{ owner=$arg; break; }}; done
user="${{owner%%:*}}" group=""
[[ $owner == *:* ]] && group="${{owner#*:}}"
if [[ $(id -u) == 0 ]] && {{ [[ -z $user ]] || id -u "$user" >/dev/null 2>&1; }} \\
  && {{ [[ -z $group ]] || getent group "$group" >/dev/null; }}; then
  exec {shlex.quote(real_chown)} "$@"
fi
printf 'chown\\t%s\\n' "$*" >> {log}
""",
    )
