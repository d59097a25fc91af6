#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages of scripts/packages.txt that are missing, with one
# `apt-get update` and one `apt-get install`. Used by scripts/test.sh and .ci/run.
#
#   scripts/install-packages.sh           install what is missing (needs root and apt-get)
#   scripts/install-packages.sh --check   only list what is missing; exit 1 if anything is
#
# Exits 0 when everything is installed afterwards; otherwise prints the missing packages
# and the command that installs them, and exits 1.
set -euo pipefail

list="$(dirname "$0")/packages.txt"
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')

missing_packages() {
  local pkg
  command -v dpkg-query >/dev/null 2>&1 || { printf '%s\n' "${packages[@]}"; return; }
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || echo "$pkg"
  done
}

mapfile -t missing < <(missing_packages)
((${#missing[@]} == 0)) && exit 0

if [[ "${1:-}" != "--check" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "install-packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; then
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && exit 0
  fi
  echo "install-packages: apt-get could not install everything" >&2
fi
echo "install-packages: missing packages: ${missing[*]}" >&2
echo "  install them with: sudo apt-get install ${missing[*]}" >&2
echo "  (or run ./scripts/test.sh as root on Debian/Ubuntu, which installs them)" >&2
exit 1
