#!/usr/bin/env bash
# Deploys the artifact the SSM parameter names, once per new key; a no-op when nothing changed.
set -euo pipefail
set -a; source /etc/mdp/host.env; set +a
key=$(aws ssm get-parameter --region "$AWS_REGION" --name "$MDP_ARTIFACT_PARAMETER" \
  --query Parameter.Value --output text)
release="/opt/mdp/releases/$(basename "$key" .zip)"
if [[ "$(readlink -f /opt/mdp/app 2>/dev/null || true)" == "$release" ]]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors --region "$AWS_REGION" "s3://$MDP_ARTIFACT_BUCKET/$key" "$work/artifact.zip"
# A half-unpacked release is never current: the symlink flips only after a complete sync.
rm -rf "$release" && mkdir -p "$release"
unzip -q "$work/artifact.zip" -d "$release"
cd "$release"
# The lock file pins every version (Airflow, Cosmos, dbt); --frozen refuses to drift from it.
UV_PROJECT_ENVIRONMENT="$release/.venv" /usr/local/bin/uv sync --frozen --no-dev \
  --no-install-project --python /usr/bin/python3.11
if [[ -n "${MDP_EXTRA_REQUIREMENTS:-}" ]]; then
  /usr/local/bin/uv export --frozen --no-dev --no-hashes --no-emit-project -o "$work/constraints.txt"
  # shellcheck disable=SC2086
  /usr/local/bin/uv pip install --python "$release/.venv/bin/python" \
    --constraint "$work/constraints.txt" $MDP_EXTRA_REQUIREMENTS
fi
if [[ -n "${MDP_BUILD_COMMAND:-}" ]]; then
  # Build steps (the dbt manifest the DAG renders from) run against the new release only.
  # shellcheck disable=SC2086
  MDP_HOME="$work" MDP_DBT_PROJECT_DIR="$release/transform" PYTHONPATH="$release" \
    "$release/.venv/bin/python" $MDP_BUILD_COMMAND
fi
chmod -R go-w "$release"
ln -sfn "$release" /opt/mdp/app.next && mv -T /opt/mdp/app.next /opt/mdp/app
# Long-running units restart on the new release; one-shot units (the migration) run once more.
# shellcheck disable=SC2086
if [[ -n "${MDP_RESTART_UNITS:-}" ]]; then systemctl try-restart $MDP_RESTART_UNITS; fi
# shellcheck disable=SC2086
if [[ -n "${MDP_START_UNITS:-}" ]]; then systemctl start --no-block $MDP_START_UNITS; fi
echo "deployed $key"
