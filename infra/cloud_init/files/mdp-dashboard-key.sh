#!/usr/bin/env bash
# Start of mdp-dashboard: the reporting user's key from Secrets Manager into /run (memory), owner-only.
set -euo pipefail
umask 077
key="$MDP_SNOWFLAKE_PRIVATE_KEY_PATH"
tmp=$(mktemp "$(dirname "$key")/.key.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# The key goes from the pipe to the file; it is never held in a variable or written to the log.
aws secretsmanager get-secret-value --region "$AWS_REGION" \
  --secret-id "$MDP_DASHBOARD_KEY_SECRET_ARN" --query SecretString --output text \
  | jq -er .private_key > "$tmp"
if ! grep -q "BEGIN PRIVATE KEY" "$tmp"; then
  echo "The secret $MDP_DASHBOARD_KEY_SECRET_ARN holds no PKCS#8 private key, so the dashboard" \
    "was not started and no key was written. Check the secret (pulumi up rewrites it), then:" \
    "systemctl restart mdp-dashboard" >&2
  exit 1
fi
chmod 0600 "$tmp"
mv -f "$tmp" "$key"
