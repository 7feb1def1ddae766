#!/usr/bin/env bash
# Debian packages the test suite needs: chromium (browser tests) and bubblewrap (sandbox).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v bwrap >/dev/null || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "Install these Debian packages first: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" != 0 ] && SUDO=sudo
echo "Installing ${missing[*]} …"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
