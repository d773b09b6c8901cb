#!/usr/bin/env bash
# One generator cycle. The database credentials are read from Secrets Manager for this run only.
set -euo pipefail
set -a; source /etc/mdp/host.env; set +a
secret=$(aws secretsmanager get-secret-value --region "$AWS_REGION" \
  --secret-id "$MDP_DB_SECRET_ARN" --query SecretString --output text)
PGUSER=$(jq -r .username <<<"$secret")
PGPASSWORD=$(jq -r .password <<<"$secret")
unset secret
export PGUSER PGPASSWORD PGHOST="$MDP_DB_HOST" PGPORT="$MDP_DB_PORT" PGDATABASE="$MDP_DB_NAME"
export PGSSLMODE=verify-full PGSSLROOTCERT=/etc/mdp/rds-ca.pem
cd /opt/mdp/app
exec /opt/mdp/app/.venv/bin/python -m mdp.cli $MDP_GENERATOR_ARGS
