#!/usr/bin/env bash
# First boot of the Airflow host: local metadata database over a unix socket, then the schema.
set -euo pipefail
set -a; source /etc/mdp/host.env; source /etc/mdp/airflow.env; set +a
if [[ ! -f /var/lib/pgsql/data/PG_VERSION ]]; then
  postgresql-setup --initdb
fi
systemctl enable --now postgresql
# Peer authentication: the airflow OS user is the only one that can reach its database.
sudo -u postgres psql -v ON_ERROR_STOP=1 -tc "select 1 from pg_roles where rolname='airflow'" | grep -q 1 \
  || sudo -u postgres createuser airflow
sudo -u postgres psql -tc "select 1 from pg_database where datname='airflow'" | grep -q 1 \
  || sudo -u postgres createdb -O airflow airflow
mkdir -p "$AIRFLOW_HOME" "$MDP_HOME" && chown airflow:airflow "$AIRFLOW_HOME" "$MDP_HOME"
# Keys shared by the Airflow processes (task tokens, web sessions): made here, never in user data.
if [[ ! -f /etc/mdp/airflow-keys.env ]]; then
  umask 077
  {
    echo "AIRFLOW__API_AUTH__JWT_SECRET=$(openssl rand -hex 32)"
    echo "AIRFLOW__API__SECRET_KEY=$(openssl rand -hex 32)"
  } > /etc/mdp/airflow-keys.env
  chown root:airflow /etc/mdp/airflow-keys.env && chmod 0640 /etc/mdp/airflow-keys.env
fi
set -a; source /etc/mdp/airflow-keys.env; set +a
sudo -u airflow --preserve-env /opt/mdp/app/.venv/bin/airflow db migrate
systemctl enable --now airflow@scheduler airflow@dag-processor airflow@triggerer airflow@api-server
