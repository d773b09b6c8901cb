"""What MWAA runs, built from the repository: the code archive, requirements.txt, the startup script.

Each lands in the source bucket as one object version: a deploy is a new version of each, and
rolling back points the environment at the previous ones.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.storage import REPO_ROOT, artifact_files

# What the DAG imports on MWAA besides Airflow itself, from uv.lock unless MWAA's constraints
# pin it. dbt is not here: it lives in its own virtualenv (DBT_PACKAGES), as MWAA documents.
MWAA_PACKAGES: tuple[str, ...] = (
    "astronomer-cosmos",
    "apache-airflow-providers-airbyte",
    "apache-airflow-providers-amazon",
    "cryptography",
    "duckdb",
    "pyarrow",
    "pyyaml",
    "snowflake-connector-python",
)
# What orchestration/include/dbt.py reads (infra and orchestration never import each other).
DBT_EXECUTABLE_ENV = "MDP_DBT_EXECUTABLE"
# Installed by the startup script into DBT_VENV, pinned from uv.lock.
DBT_PACKAGES: tuple[str, ...] = ("dbt-core", "dbt-snowflake")
AIRFLOW_HOME = "/usr/local/airflow"
PLUGINS_DIR = f"{AIRFLOW_HOME}/plugins"
DBT_VENV = f"{AIRFLOW_HOME}/dbt_venv"
# The packages of ours the DAG imports (the cloud path and its local twin), shipped in plugins.zip.
CODE_DIRS: tuple[str, ...] = (
    "core",
    "orchestration",
    "transform",
    "exports",
    "ingestion",
    "source_generator",
)
MANIFEST = Path("transform/target/manifest.json")
# MWAA's Python for its Airflow 3 images.
MWAA_PYTHON = "3.12"
CONSTRAINTS_DIR = Path(__file__).resolve().parent / "constraints"
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")

# The one file in dags/: the DAG itself comes from the versioned plugins.zip (an airflow DAG).
DAG_LOADER = f'''"""mdp's daily airflow DAG on MWAA, loaded from the release in plugins.zip."""

import sys

if "{PLUGINS_DIR}" not in sys.path:
    sys.path.append("{PLUGINS_DIR}")

from orchestration.dags.mdp_daily import dag  # noqa: E402,F401
'''
# Airflow imports every .py file in the plugins folder as a plugin unless told not to: the
# archive holds packages, not plugins. Airflow 3 reads .airflowignore as glob patterns
# (core.dag_ignore_file_syntax), where `*` matches every file and folder.
PLUGINS_IGNORE = "*\n"


class BundleError(ValueError):
    """The bundle cannot be built from this checkout; the message says how to fix it."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path = REPO_ROOT / "uv.lock") -> dict[str, str]:
    """Every package's version in uv.lock, by normalized name."""
    data = tomllib.loads(lock.read_text())
    return {
        normalize(p["name"]): str(p["version"]) for p in data.get("package", []) if "version" in p
    }


def constraints_url(airflow_version: str, python: str = MWAA_PYTHON) -> str:
    """Apache Airflow's constraints file for this version, as MWAA's requirements.txt names it."""
    return (
        "https://raw.githubusercontent.com/apache/airflow/"
        f"constraints-{airflow_version}/constraints-{python}.txt"
    )


def constraints_file(airflow_version: str) -> Path:
    return CONSTRAINTS_DIR / f"constraints-{airflow_version}.txt"


def kept_versions() -> tuple[str, ...]:
    """The Airflow versions whose constraints are kept in the repository, oldest first."""
    found = (
        p.name.removeprefix("constraints-").removesuffix(".txt")
        for p in CONSTRAINTS_DIR.glob("constraints-*.txt")
    )
    return tuple(
        sorted(found, key=lambda v: tuple(int(x) if x.isdigit() else -1 for x in v.split(".")))
    )


def vendored_constraints(airflow_version: str) -> dict[str, str]:
    """The pins of the constraints kept in the repository for `airflow_version`."""
    path = constraints_file(airflow_version)
    if not path.is_file():
        raise BundleError(
            f"no constraints for Airflow {airflow_version} in {path.relative_to(REPO_ROOT)}: "
            f"generate them with `uv run --frozen python -m infra.mwaa.constraints "
            f"{airflow_version}`, or set aws.airflow.mwaa.airflowVersion to a version that has them"
        )
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def requirements_txt(
    airflow_version: str, locked: Mapping[str, str], constrained: Mapping[str, str]
) -> str:
    """MWAA's requirements.txt: its constraints first, then what the DAG needs.

    A package the constraints pin is left to them (MWAA refuses to install against its
    constraints); any other is pinned to its uv.lock version.
    """
    lines = [
        f"# Generated from uv.lock for MWAA's Airflow {airflow_version}; do not edit.",
        f'--constraint "{constraints_url(airflow_version)}"',
    ]
    for name in MWAA_PACKAGES:
        key = normalize(name)
        if key in constrained:
            lines.append(f"{name}  # {constrained[key]} from the constraints")
        elif key in locked:
            lines.append(f"{name}=={locked[key]}")
        else:
            raise BundleError(f"{name} is neither in uv.lock nor in the constraints: run `uv lock`")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StartupEnv:
    """What the DAG reads from its environment on MWAA (names and paths, never secrets)."""

    stack: str
    raw_database: str
    exports_target: str


def startup_script(env: StartupEnv, locked: Mapping[str, str]) -> str:
    """MWAA's startup script: dbt in its own virtualenv, and the DAG's environment."""
    pins = []
    for name in DBT_PACKAGES:
        if normalize(name) not in locked:
            raise BundleError(f"{name} is not in uv.lock: run `uv lock`")
        pins.append(f"{name}=={locked[normalize(name)]}")
    exports = {
        "MDP_TARGET": "cloud",
        "MDP_STACK": env.stack,
        "MDP_DBT_PROJECT_DIR": f"{PLUGINS_DIR}/transform",
        DBT_EXECUTABLE_ENV: f"{DBT_VENV}/bin/dbt",
        "MDP_RAW_DATABASE": env.raw_database,
        "MDP_HOME": "/tmp/mdp",
        "MDP_EXPORTS_TARGET": env.exports_target,
    }
    lines = [
        "#!/bin/sh",
        "# MWAA runs this on each scheduler, worker and web server before Airflow starts.",
        "# dbt gets its own virtualenv, so its dependencies never fight MWAA's constraints;",
        "# Cosmos runs the dbt executable from it (MDP_DBT_EXECUTABLE).",
        "set -eu",
        'if [ "${MWAA_AIRFLOW_COMPONENT:-worker}" = "worker" ] && '
        f'[ ! -x "{DBT_VENV}/bin/dbt" ]; then',
        f'  python3 -m venv "{DBT_VENV}"',
        f'  "{DBT_VENV}/bin/pip" install --no-cache-dir --quiet {" ".join(pins)}',
        "fi",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
    return "\n".join(lines) + "\n"


def code_files(root: Path = REPO_ROOT) -> dict[str, Path]:
    """plugins.zip's members: the packages the DAG imports and the dbt project with its manifest."""
    files = {
        p.relative_to(root).as_posix(): p
        for p in artifact_files(root)
        if p.relative_to(root).parts[0] in CODE_DIRS
    }
    manifest = root / MANIFEST
    if manifest.is_file():
        files[MANIFEST.as_posix()] = manifest
    return files
