#!/usr/bin/env bash
# tests/oidc/setup.sh — installs the test OpenID provider's npm packages
# (pinned by package-lock.json) into ${NSKD_CACHE:-~/.cache/nskd-test}/oidc.
# Idempotent: does nothing when the installed lock matches. Prints the
# directory holding provider.js and node_modules.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${NSKD_CACHE:-$HOME/.cache/nskd-test}/oidc"
command -v node >/dev/null || { apt-get install -y -qq nodejs npm >/dev/null 2>&1 || true; }
command -v npm >/dev/null || { echo "tests/oidc/setup.sh: npm not found; install nodejs and npm (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$dest"
if ! cmp -s "$here/package-lock.json" "$dest/package-lock.json" || [ ! -d "$dest/node_modules/oidc-provider" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
fi
cp "$here/provider.mjs" "$dest/provider.mjs"
echo "$dest"
