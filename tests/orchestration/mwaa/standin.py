"""The bundle as MWAA unpacks it, under a stand-in folder for MWAA's /usr/local/airflow.

The objects come from infra/mwaa/bundle.py, as the deploy uploads them: dags/ holds only the
loader, plugins.zip the packages the DAG imports with the dbt project and its manifest and the
.airflowignore, then requirements.txt and startup.sh. The archive is written and unpacked the
way MWAA unpacks it into its plugins folder. Only MWAA's home folder is moved to the stand-in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.mwaa import bundle

PLUGINS_ZIP = "plugins.zip"
AIRFLOWIGNORE = ".airflowignore"


@dataclass(frozen=True)
class StandIn:
    home: Path  # stands for MWAA's /usr/local/airflow
    dags: Path
    plugins: Path
    startup: Path
    dbt: Path  # where the startup script looks for dbt in its own virtualenv


def relocate(text: str, home: Path) -> str:
    """A bundle text with MWAA's home folder moved to the stand-in."""
    return text.replace(bundle.AIRFLOW_HOME, str(home))


def build(home: Path, manifest: Path, env: bundle.StartupEnv, dbt_executable: Path) -> StandIn:
    """Lay the bundle out under `home`; dbt's virtualenv holds `dbt_executable`, made ahead."""
    dags, plugins = home / "dags", home / "plugins"
    dags.mkdir(parents=True)
    (dags / "mdp_daily.py").write_text(relocate(bundle.DAG_LOADER, home))
    members = {rel: path.read_bytes() for rel, path in bundle.code_files().items()}
    # The manifest `make dbt-manifest` builds before a deploy.
    members[bundle.MANIFEST.as_posix()] = manifest.read_bytes()
    members[AIRFLOWIGNORE] = bundle.PLUGINS_IGNORE.encode()
    archive = home / PLUGINS_ZIP
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(members.items()):
            zf.writestr(name, data)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(plugins)
    startup = home / "startup.sh"
    startup.write_text(relocate(bundle.startup_script(env, bundle.locked_versions()), home))
    # The startup script makes dbt's virtualenv once; here it exists already (the project's dbt).
    dbt = Path(relocate(bundle.DBT_VENV, home)) / "bin" / "dbt"
    dbt.parent.mkdir(parents=True)
    dbt.symlink_to(dbt_executable)
    return StandIn(home, dags, plugins, startup, dbt)


def startup_environment(standin: StandIn, base: dict[str, str]) -> dict[str, str]:
    """`base` with what the startup script exports, run as MWAA runs it on a worker."""
    shell = shutil.which("sh") or "/bin/sh"
    result = subprocess.run(
        [shell, "-c", f'. "{standin.startup}" && env -0'],
        env={**base, "MWAA_AIRFLOW_COMPONENT": "worker"},
        capture_output=True,
        check=True,
    )
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k not in ("_", "PWD", "SHLVL", "MWAA_AIRFLOW_COMPONENT")}


def airflow_environment(standin: StandIn, **extra: str) -> dict[str, str]:
    """This process's environment without Airflow's and Python's settings, plus the stand-in's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_HOME", "AIRFLOW__", "MDP_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= {
        "AIRFLOW_HOME": str(standin.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(standin.dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(standin.plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{standin.home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    return startup_environment(standin, env) | extra
