"""Writes the constraints kept for an MWAA Airflow version, resolved from PyPI with uv.

Apache Airflow publishes its constraints on GitHub; where that is out of reach, the same pins
come from resolving Airflow, the providers MWAA installs and the DAG's providers as of the
release date. The bundle's requirements.txt still names the published file for MWAA itself.

    uv run --frozen python -m infra.mwaa.constraints 3.0.6 2025-09-30
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from infra.mwaa.bundle import constraints_file

# Airflow with the providers MWAA installs, and the providers the DAG uses.
REQUIREMENTS = (
    "apache-airflow[celery,amazon,postgres,http]=={version}",
    "apache-airflow-providers-airbyte",
    "apache-airflow-providers-snowflake",
    "apache-airflow-providers-openlineage",
)


def generate(version: str, released: str, python: str = "3.11") -> Path:
    out = constraints_file(version)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(r.format(version=version) for r in REQUIREMENTS) + "\n")
        subprocess.run(
            [
                "uv",
                "pip",
                "compile",
                str(req),
                "--python-version",
                python,
                "--exclude-newer",
                released,
                "--no-header",
                "--no-annotate",
                "-o",
                str(out),
            ],
            check=True,
        )
    body = out.read_text()
    out.write_text(
        f"# Constraints for Apache Airflow {version} on Python {python}, resolved from PyPI as of\n"
        f"# {released} by `python -m infra.mwaa.constraints {version} {released}`.\n" + body
    )
    return out


if __name__ == "__main__":
    print(generate(sys.argv[1], sys.argv[2]))
