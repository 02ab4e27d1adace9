#!/usr/bin/env bash
# Install the missing packages of scripts/system-packages.txt (Debian/Ubuntu, as root).
# Not root: print the one apt-get line that installs them and exit 0, so that `make test` still runs
# (the simulated-cluster tests are then reported as skipped, with the reason).
set -euo pipefail
list="$(dirname "$0")/system-packages.txt"

missing=()
while read -r package check; do
  case "$package" in ''|'#'*) continue ;; esac
  bash -c "$check" >/dev/null 2>&1 || missing+=("$package")
done < "$list"

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "orchestrate: missing system packages: ${missing[*]}" >&2
  echo "  install them as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  echo "  (until then the simulated-cluster tests are skipped; see $list)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "orchestrate: missing system packages ${missing[*]} and no apt-get; install their equivalents" >&2
  exit 1
fi
echo "orchestrate: installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
