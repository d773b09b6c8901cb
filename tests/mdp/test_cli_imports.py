"""The `mdp` CLI starts on the hosts: it imports only what their release carries."""

from __future__ import annotations

import json
import subprocess
import sys

from core.paths import REPO_ROOT
from infra.storage import ARTIFACT_DIRS


def test_the_cli_imports_only_packages_the_hosts_release_carries() -> None:
    probe = (
        "import json, sys; import mdp.cli; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(run.stdout))
    ours = {p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert ours & loaded <= set(ARTIFACT_DIRS), ours & loaded - set(ARTIFACT_DIRS)
    # The Pulumi SDK and its providers cost seconds on every command.
    assert not {m for m in loaded if m.startswith("pulumi")}
