#!/usr/bin/env bash
# One generator cycle. The database credentials are read from Secrets Manager for this run only.
set -euo pipefail
set -a; source /etc/mdp/host.env; set +a
secret=$(aws secretsmanager get-secret-value --region "$AWS_REGION" \
  --secret-id "$MDP_DB_SECRET_ARN" --query SecretString --output text)
PGUSER=$(jq -r .username <<<"$secret")
PGPASSWORD=$(jq -r .password <<<"$secret")
unset secret
# libpq takes the user and password from the environment, so the DSN the generator prints has none.
export PGUSER PGPASSWORD
export MDP_SOURCE_DSN="host=$MDP_DB_HOST port=$MDP_DB_PORT dbname=$MDP_DB_NAME sslmode=verify-full sslrootcert=/etc/mdp/rds-ca.pem"
cd /opt/mdp/app
# shellcheck disable=SC2086
exec /opt/mdp/app/.venv/bin/python -c 'from mdp.cli import app; app(prog_name="mdp")' $MDP_GENERATOR_ARGS
