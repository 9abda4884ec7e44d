#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, only those missing.
#   scripts/system-packages.sh [runtime|test|bench]...   (default: runtime)
# runtime: what the platform needs to run (the demo): the CJK font and Pango for PDF bills
# test:    runtime + headless Chromium for the browser tests
# bench:   runtime + wrk for HTTP load
set -euo pipefail

declare -A NEED=(
  [runtime]="fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
  [test]="chromium mbpoll socat poppler-utils"
  [bench]="wrk"
)

wanted=()
for purpose in "${@:-runtime}"; do
  if [[ ! -v NEED[$purpose] ]]; then
    echo "system-packages: unknown purpose '$purpose' (runtime, test, bench)" >&2
    exit 2
  fi
  for pkg in ${NEED[runtime]} ${NEED[$purpose]}; do wanted+=("$pkg"); done
done

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "system-packages: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "${missing[@]}" \
  || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
