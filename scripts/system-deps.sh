#!/usr/bin/env bash
# Debian packages the tests use: a real headless Chromium for the dashboard tests (browser
# downloads are not possible, so it comes from Debian), cloud-init for its own schema check of
# the hosts' user data, jq and systemd-analyze for the hosts' scripts and units, and the aws CLI
# and unzip that the hosts' scripts call in `mdp rehearse`.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v cloud-init >/dev/null || missing+=(cloud-init)
command -v jq >/dev/null || missing+=(jq)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v aws >/dev/null || missing+=(awscli)
command -v unzip >/dev/null || missing+=(unzip)
[ "${#missing[@]}" -eq 0 ] && exit 0

install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing from Debian: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
else
  echo "Missing system packages: ${missing[*]}. The tests that need them will fail and say so." >&2
  echo "Install them with: sudo apt-get update && sudo ${install[*]}" >&2
fi
