#!/usr/bin/env bash
# Every 10 minutes: when the dashboard's key secret holds another key than the running dashboard
# signed in with (a rotation's `pulumi up` wrote a new version), restart the dashboard, whose
# start fetches the new key. The previous key stays valid until the next rotation removes it,
# so the dashboard never signs in with a removed key, and no new code artifact is needed.
set -euo pipefail
key="$MDP_SNOWFLAKE_PRIVATE_KEY_PATH"
# Only digests are compared: the key goes through pipes, never into a variable or the log.
if ! wanted=$(aws secretsmanager get-secret-value --region "$AWS_REGION" \
  --secret-id "$MDP_DASHBOARD_KEY_SECRET_ARN" --query SecretString --output text \
  | jq -er '.private_key | select(contains("BEGIN PRIVATE KEY"))' | sha256sum); then
  echo "The secret $MDP_DASHBOARD_KEY_SECRET_ARN could not be read or holds no PKCS#8 private" \
    "key, so the dashboard keeps the key it runs with. Check the secret (pulumi up rewrites" \
    "it) and this host's role; the check runs again in 10 minutes." >&2
  exit 1
fi
running=""
if [[ -r "$key" ]]; then running=$(sha256sum < "$key"); fi
if [[ "$wanted" == "$running" ]]; then
  exit 0
fi
# try-restart restarts the dashboard only if it runs; a stopped dashboard stays stopped.
echo "The secret $MDP_DASHBOARD_KEY_SECRET_ARN holds a new key: restarting mdp-dashboard on it."
systemctl try-restart mdp-dashboard.service
